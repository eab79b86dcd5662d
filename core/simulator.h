// The simulator replays a schedule against the cost model. Compute, the
// stage-to-stage links and the two host-copy directions are separate
// resources: each device's compute stream runs its compute actions in order;
// sends occupy the (from, to) link; OFFLOAD and RELOAD run on the device's
// device-to-host and host-to-device engines (or on the compute stream when
// the profile has no asynchronous copies, as on CPU). Memory is tracked per
// device and category with the same per-unit order the worker's stash uses,
// so on a synchronous profile the resident-activation peak equals the
// worker ledger's exactly. Pure; any thread.
#ifndef CHRONOS_CORE_SIMULATOR_H_
#define CHRONOS_CORE_SIMULATOR_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/cost_model.h"
#include "core/schedule.h"

namespace chronos {

enum class Resource { kCompute, kD2H, kH2D, kLink, kAllReduce };

struct TimelineEvent {
  int device = 0;
  int action = 0;  // index in the device's list
  Resource resource = Resource::kCompute;
  double start = 0;
  double end = 0;
};

struct MemoryBreakdown {
  int64_t weights = 0;
  int64_t gradients = 0;
  int64_t optimizer = 0;    // resident optimizer state (+ staging when streamed)
  int64_t activations = 0;  // resident saved activations
  int64_t offloaded = 0;    // saved activations in host memory (not in HBM)
  int64_t buffers = 0;      // communication buffers in flight
  int64_t DeviceTotal() const { return weights + gradients + optimizer + activations + buffers; }
};

struct MemorySample {
  double time = 0;
  MemoryBreakdown bytes;
};

struct DeviceSimResult {
  double busy_seconds = 0;  // F, B, BI, BW, RECOMPUTE
  double recompute_seconds = 0;
  double copy_wait_seconds = 0;  // compute idle waiting for a RELOAD
  int64_t peak_bytes = 0;        // device total at its peak
  double peak_time = 0;
  MemoryBreakdown at_peak;
  int64_t peak_activation_bytes = 0;
  double peak_activation_time = 0;
  int64_t peak_offloaded_bytes = 0;
  int64_t peak_buffer_bytes = 0;
  int64_t optimizer_host_bytes = 0;
  double optimizer_stream_seconds = 0;  // host<->device optimizer traffic
  // Updated optimizer state written back during the next iteration's
  // warm-up instead of in the step (held in HBM until then).
  int64_t optimizer_writeback_bytes = 0;
  double last_forward_end = 0;  // when the drain (cooldown) begins
  int max_inflight = 0;
  std::vector<MemorySample> curve;  // when SimOptions::record_curves
};

// One (chunk, micro-batch) activation's life, for the planner.
struct ActivationLife {
  int device = 0;
  int chunk = 0;
  int microbatch = 0;
  double f_end = 0;
  double backward_start = 0;
  int64_t bytes = 0;  // kept after F under its policy, before any offload
  // Offloaded activations only: when the copy out ended and the copy back
  // began (the activation is resident outside [offload_end, reload_start)).
  double offload_end = -1;
  double reload_start = -1;
};

struct SimOptions {
  int data_parallel = 1;
  // Fraction of each device's optimizer state kept in host memory and
  // streamed in for the step (empty = none).
  std::vector<double> optimizer_offload;
  // HBM per device the optimizer's streaming may fill (0 = unlimited).
  int64_t hbm_budget = 0;
  bool record_timeline = true;
  bool record_curves = false;
};

struct SimResult {
  double iteration_seconds = 0;  // until the last OPTIM_STEP ends
  double pipeline_seconds = 0;   // until the last backward ends
  double bubble_ratio = 0;       // idle share of devices x pipeline time
  std::vector<DeviceSimResult> devices;
  std::vector<TimelineEvent> timeline;
  std::vector<ActivationLife> activations;
};

// kInvalidArgument if the schedule cannot be replayed (run ValidateSchedule
// first for a precise diagnosis).
absl::StatusOr<SimResult> Simulate(const Schedule& s, const CostModel& costs,
                                   const SimOptions& options = {});

}  // namespace chronos

#endif  // CHRONOS_CORE_SIMULATOR_H_
