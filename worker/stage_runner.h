// Runs one device's part of one job attempt: builds its model chunks, the
// optimizer, the data source and the executor, then runs the iterations of
// the pushed schedule, writes checkpoints and reports progress. The worker
// daemon owns one StageRunner per assignment; tests run several in threads.
//
// Thread-safety: Run() on one thread; Stop(), UpdateSchedule() and
// ledger() from any thread.
#ifndef CHRONOS_WORKER_STAGE_RUNNER_H_
#define CHRONOS_WORKER_STAGE_RUNNER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chronos/v1/job.pb.h"
#include "chronos/v1/worker.pb.h"
#include "core/schedule.h"
#include "worker/memory_ledger.h"

namespace chronos::worker {

// Torch-free on purpose: the worker daemon's gRPC and metrics code includes
// this header, and Communicator (worker/comm/communicator.h) pulls in ATen.
// Callers of Create include communicator.h themselves.
class Communicator;

struct StageRunnerOptions {
  v1::JobSpec spec;   // validated, defaults applied
  Schedule schedule;  // the whole pipeline's schedule; this device's list runs
  int device = 0;     // pipeline stage
  int data_rank = 0;
  int64_t resume_iteration = 0;  // restore this checkpoint first; 0 = fresh
  std::string checkpoint_dir;    // "" = the spec's training.checkpoint_dir
  // Pipeline width of the attempt that wrote resume_iteration's checkpoint;
  // 0 = this schedule's. Another width restores by parameter name.
  int checkpoint_num_devices = 0;
  std::string device_name = "cpu";  // "cpu" or "cuda:N"
  int threads = 0;                  // intra-op threads; 0 = leave LibTorch's
  int64_t policy_generation = 0;
  double offload_ratio = 0;  // reported with progress
  // Stop after this iteration even if the spec asks for more (tests,
  // stage emulation); 0 = the spec's training.iterations.
  int64_t max_iterations = 0;
};

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // Called on the Run() thread after each iteration with the iteration's
  // one record (chronos.v1.ProgressReport and its DeviceIteration, whose
  // fields say what each figure is). The engine fills every field but the
  // envelope (worker_id, job, attempt, finished) and, on a CPU, the device
  // memory estimate (hbm_*: 0 here), which the worker daemon adds. A
  // non-OK status stops the run with that status.
  virtual absl::Status OnIteration(const v1::ProgressReport& report) = 0;
};

class StageRunner {
 public:
  static absl::StatusOr<std::unique_ptr<StageRunner>> Create(StageRunnerOptions options,
                                                             std::unique_ptr<Communicator> comm);
  virtual ~StageRunner() = default;

  // Runs until all iterations are done (OK), Stop() (kCancelled), or a
  // failure: kResourceExhausted for out of memory, kUnavailable or
  // kDeadlineExceeded for transport errors, kDataLoss for unreadable
  // checkpoints, kInternal otherwise. LibTorch exceptions never escape.
  virtual absl::Status Run(ProgressSink* sink) = 0;
  virtual void Stop() = 0;
  // Replaces this device's action list from the next iteration on (a live
  // policy change). The new schedule must keep the partition.
  virtual void UpdateSchedule(const Schedule& schedule, int64_t generation,
                              double offload_ratio) = 0;
  // Writes a checkpoint at the end of the current iteration.
  virtual void RequestCheckpoint() = 0;
  virtual const MemoryLedger& ledger() const = 0;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_STAGE_RUNNER_H_
