// Stage emulation: one device's real action list of a planned job, run on
// this machine's device (a GPU, or the CPU) with its pipeline peers replaced
// by loopback (receives complete at once with fixed data, sends are
// dropped, collectives span a group of one). It measures what one stage
// costs alone: its iteration time (compute and copies, no waiting for
// peers), the memory ledger's peak of saved activations, and on a GPU the
// caching allocator's peak. Beside each figure it puts the planner's
// prediction for that device, from the same plan the coordinator would push.
// So a single GPU can check the planner for every stage of a p-stage job.
//
// On the "cpu" profile (synchronous copies) the ledger's peak equals the
// simulator's peak_activation_bytes exactly; tests/worker/ checks it.
#ifndef CHRONOS_WORKER_STAGE_EMULATION_H_
#define CHRONOS_WORKER_STAGE_EMULATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chronos/v1/job.pb.h"

namespace chronos::worker {

struct StageEmulationOptions {
  std::string device = "cpu";    // "cpu" or "cuda:N"
  int stage = -1;                // one pipeline stage, or -1 for every stage
  int warmup_iterations = 1;     // run, not measured
  int iterations = 3;            // measured
  int threads = 0;               // intra-op threads; 0 = LibTorch's default
  int64_t hbm_budget_bytes = 0;  // the planner's budget; 0 = the spec's
};

struct StageEmulationRow {
  int stage = 0;
  // Measured over the measured iterations.
  double median_seconds = 0;
  int64_t peak_activation_bytes = 0;  // ledger, max over iterations
  int64_t hbm_peak_bytes = 0;         // allocator peak (GPU; 0 on CPU)
  int64_t offloaded_bytes = 0;        // copied to host per iteration (last)
  // Predicted by the planner's simulation of the same schedule.
  double predicted_busy_seconds = 0;  // compute (+ copy waits) of the device
  int64_t predicted_peak_activation_bytes = 0;
  int64_t predicted_peak_bytes = 0;  // device total: state + activations + buffers
};

struct StageEmulationReport {
  std::string schedule_kind;
  std::string device;
  std::string device_profile;
  int pipeline = 0;
  std::vector<StageEmulationRow> rows;
};

// `spec` is a job spec as written (defaults are applied and it is
// validated here); its data.path must be readable, since the first and last
// stages read batches. Data parallelism is set to 1 (one replica is what a
// stage's memory and time depend on) and checkpoints are off.
// kInvalidArgument for a bad spec or option (naming it), kFailedPrecondition
// for a device this build or machine lacks, the stage's own errors otherwise.
absl::StatusOr<StageEmulationReport> EmulateStages(v1::JobSpec spec,
                                                   const StageEmulationOptions& options);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_STAGE_EMULATION_H_
