// One assignment (job, attempt, stage) on this worker, from rendezvous to
// the last progress report, on its own thread:
//   1. waits for the assignment it replaces to end (a worker runs one
//      attempt at a time; the previous one was told to stop),
//   2. rendezvouses with the attempt's other workers through the
//      coordinator's store and builds the engine (worker/stage_launcher.h),
//   3. runs the iterations; after each, records metrics and queues a
//      ProgressReport (delivered in order by a ProgressReporter, which
//      holds it until the coordinator has stored it, and pauses training
//      while it holds too many),
//   4. on failure reports a fault whose kind tells the coordinator what to
//      do (out of memory: re-plan smaller; transport: restart the attempt),
//   5. removes the assignment's metric series.
// Policy updates and checkpoint requests are handed to the engine, which
// applies them at the next iteration boundary; the generation in force is
// acknowledged through the progress reports' policy_generation.
//
// Thread-safe: the command thread calls Stop/UpdatePolicy/RequestCheckpoint
// while the run thread trains; the heartbeat thread reads the accessors.
#ifndef CHRONOS_WORKER_DAEMON_ASSIGNMENT_RUN_H_
#define CHRONOS_WORKER_DAEMON_ASSIGNMENT_RUN_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "chronos/v1/worker.pb.h"
#include "worker/comm/kv_store.h"
#include "worker/daemon/coordinator_client.h"
#include "worker/daemon/progress_reporter.h"
#include "worker/daemon/worker_metrics.h"
#include "worker/daemon/worker_options.h"
#include "worker/stage_runner.h"

namespace chronos::worker {

// The worker-wide services an assignment uses; all borrowed.
struct AssignmentServices {
  const WorkerOptions* options = nullptr;
  CoordinatorClient* client = nullptr;
  WorkerMetrics* metrics = nullptr;
  std::shared_ptr<KeyValueStore> store;
  int64_t device_memory_bytes = 0;  // HBM on GPU, 0 on CPU
};

// The fault kind the coordinator acts on: FAULT_INPUT for a status marked by
// AsInputFault (worker/input_fault.h), else from the engine's status code.
v1::FaultKind FaultKindOf(const absl::Status& status);

class AssignmentRun {
 public:
  // Starts the run thread. `previous` (may be null) is stopped already; the
  // thread destroys it (joining its thread) before it starts.
  AssignmentRun(v1::Assignment assignment, AssignmentServices services,
                std::unique_ptr<AssignmentRun> previous);
  // Stops and joins.
  ~AssignmentRun();

  bool Matches(const std::string& job, int attempt) const {
    return job == a_.job() && attempt == a_.attempt();
  }
  const v1::Assignment& assignment() const { return a_; }
  // Asks the run to end at the next action boundary (no fault is reported).
  void Stop(const std::string& reason);
  // Ends the run with a fault that reports `status` (the reporter found
  // that the coordinator lost reports it can no longer send).
  void Fail(const absl::Status& status);
  // Hands a new action list to the engine, from the next iteration on.
  // Older or equal generations are ignored.
  void UpdatePolicy(int64_t generation, const v1::Schedule& schedule, double offload_ratio);
  void RequestCheckpoint();
  // After a reconnect: sends every progress report the coordinator has not
  // yet stored again (see ProgressReporter::ResendUnacknowledged).
  void ResendUnacknowledgedProgress();
  // Samples the engine's memory ledger into the live gauges (resident and
  // offloaded activation bytes; on CPU the allocated bytes they imply).
  // Called at scrape time from the metrics thread.
  void RefreshLiveMetrics();

  int64_t iteration() const { return iteration_.load(); }  // last completed
  bool finished() const { return finished_.load(); }       // thread ended
  // How the run ended (OK while it runs).
  absl::Status result() const;

 private:
  class Sink;
  void Main();
  absl::Status Train();
  void ReportFault(const absl::Status& status);

  const v1::Assignment a_;
  const AssignmentServices services_;
  const JobLabels labels_;
  std::unique_ptr<AssignmentRun> previous_;
  std::unique_ptr<ProgressReporter> reporter_;

  std::atomic<bool> stop_{false};
  std::atomic<int64_t> iteration_{0};
  std::atomic<bool> finished_{false};
  // Model-state bytes of this stage (CPU memory figures); set before training.
  std::atomic<int64_t> state_bytes_{0};

  mutable absl::Mutex mu_;
  StageRunner* runner_ ABSL_GUARDED_BY(mu_) = nullptr;  // while training
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;         // newest handed over
  struct Pending {
    int64_t generation;
    v1::Schedule schedule;
    double offload_ratio;
  };
  std::optional<Pending> pending_ ABSL_GUARDED_BY(mu_);  // before the runner
  bool checkpoint_pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status result_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);  // from Fail()
  std::thread thread_;                         // last: starts after everything above is built
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_ASSIGNMENT_RUN_H_
