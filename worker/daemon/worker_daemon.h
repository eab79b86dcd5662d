// chronos-worker's daemon: serves /metrics and the gRPC health service,
// measures its host, then keeps a session with the coordinator on a thread
// of its own:
//   register (again after any loss, with its previous id) -> hold the
//   Attach stream and dispatch its commands -> on any break, back off
//   (exponentially, with jitter, capped) and start over.
// A second thread sends heartbeats at the interval the coordinator asked
// for; a heartbeat answered "unknown" breaks the stream so the session
// registers again. Training runs in an AssignmentRun, one at a time.
//
// Thread-safe: Start and Shutdown from the main thread; everything else
// runs on the daemon's own threads.
#ifndef CHRONOS_WORKER_DAEMON_WORKER_DAEMON_H_
#define CHRONOS_WORKER_DAEMON_WORKER_DAEMON_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "chronos/v1/worker.pb.h"
#include "worker/daemon/assignment_run.h"
#include "worker/daemon/coordinator_client.h"
#include "worker/daemon/health_server.h"
#include "worker/daemon/worker_metrics.h"
#include "worker/daemon/worker_options.h"

namespace chronos::worker {

class WorkerDaemon {
 public:
  explicit WorkerDaemon(WorkerOptions options);
  ~WorkerDaemon();  // Shutdown()

  // The checks of `options` that Start makes before it binds or probes
  // anything (addresses, the coordinator target, the device string):
  // kInvalidArgument naming the flag. `chronos-worker --check-flags` runs
  // them alone.
  static absl::Status CheckOptions(const WorkerOptions& options);

  // Binds the metrics and health endpoints, probes the device and host,
  // and starts the session. Errors name the flag at fault.
  absl::Status Start();
  std::string metrics_address() const { return metrics_.address(); }
  std::string health_address() const { return health_.address(); }

  // Stops the running assignment (reporting it to the coordinator as a
  // fault, so the job recovers at once instead of waiting for missed
  // heartbeats), ends the session and the servers. Idempotent.
  void Shutdown();
  // Why the daemon gave up on its own (OkStatus while it has not): see
  // WorkerOptions::on_fatal.
  absl::Status fatal() const;

 private:
  void SessionLoop();
  void HeartbeatLoop();
  void Dispatch(const v1::WorkerCommand& command);
  void Assign(const v1::Assignment& assignment);
  // Sleeps up to `d` unless shutting down; false when shutting down.
  bool Pause(absl::Duration d);

  WorkerOptions o_;
  WorkerMetrics metrics_;
  HealthServer health_;
  v1::WorkerInfo info_;
  int64_t device_memory_bytes_ = 0;
  std::unique_ptr<CoordinatorClient> client_;
  std::shared_ptr<KeyValueStore> store_;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  // Bumped at each registration: wakes the heartbeat loop, which then
  // beats at once and at the interval the coordinator asked for.
  int64_t registration_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<AssignmentRun> run_ ABSL_GUARDED_BY(mu_);

  std::thread session_;
  std::thread heartbeat_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_WORKER_DAEMON_H_
