// The workers the coordinator knows: what each registered (device, memory,
// bandwidth), when it last sent a heartbeat, whether it holds an Attach
// stream (its CommandQueue), and which job stage it runs. A worker is dead
// after heartbeat_interval * misses without a heartbeat (measured on the
// injected Clock), or at once when a new process registers under the same
// name. The registry only records; the JobController decides what a death
// means for a job. Thread-safe; it never calls out while holding its lock,
// so callers may hold their own locks when calling in.
#ifndef CHRONOS_COORDINATOR_WORKER_REGISTRY_H_
#define CHRONOS_COORDINATOR_WORKER_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/worker.pb.h"
#include "coordinator/clock.h"
#include "coordinator/command_queue.h"

namespace chronos::coordinator {

// Which job attempt a busy worker works for. Its stage (device, data rank)
// is kept once, in the job's status.assignments (the JobController).
struct WorkerBinding {
  std::string job;
  int attempt = 0;
};

class WorkerRegistry {
 public:
  WorkerRegistry(Clock* clock, absl::Duration heartbeat_interval, int heartbeat_misses);

  struct Registration {
    std::string worker_id;
    // Workers this registration replaced: same name, not re-registering
    // under their own id, so the process behind them is gone. Their
    // bindings are what the controller must handle.
    std::vector<std::pair<std::string, WorkerBinding>> superseded;
  };
  // A new worker, or `previous_worker_id` coming back (after a reconnect or
  // a coordinator restart: an unknown previous id is adopted as is). A
  // returning dead worker comes back idle, except one whose name a later
  // registration took and still holds: that is a second live process under
  // one name, and it gets kAlreadyExists (taking the name back would
  // declare the other dead, which would do the same, for ever).
  absl::StatusOr<Registration> Register(const v1::WorkerInfo& info,
                                        const std::string& previous_worker_id);
  // False for unknown or dead workers (they must register again).
  bool Heartbeat(const std::string& worker_id);
  // A fresh outbox for the worker's Attach stream; an older stream's outbox
  // is closed. kNotFound for unknown, kFailedPrecondition for dead workers.
  // Counts as a heartbeat.
  absl::StatusOr<std::shared_ptr<CommandQueue>> Attach(const std::string& worker_id);
  // The stream holding `queue` ended (no-op if a newer one replaced it).
  void Detach(const std::string& worker_id, const CommandQueue* queue);
  // Queues a command on the worker's stream; false if it holds none.
  bool Send(const std::string& worker_id, v1::WorkerCommand command);

  // Workers that are idle and attached, oldest registration first.
  std::vector<std::string> IdleAttached() const;
  void Bind(const std::string& worker_id, const WorkerBinding& binding);
  // Back to idle (unless dead); no-op for unknown workers.
  void Release(const std::string& worker_id);
  // After a coordinator restart: a worker a running job had, not yet back.
  // It gets a full heartbeat timeout to re-register.
  void Restore(const std::string& worker_id, const WorkerBinding& binding);
  // Once the coordinator listens: every restored worker not back yet gets a
  // full heartbeat timeout from now. Its timeout must run from when it can
  // be heard; re-planning the restored jobs before serving can take
  // seconds.
  void StartRestoredTimeouts();
  std::optional<WorkerBinding> BindingOf(const std::string& worker_id) const;
  std::optional<v1::WorkerState> StateOf(const std::string& worker_id) const;

  // Marks workers whose heartbeat is overdue as dead and returns them with
  // the bindings they had. Forgets workers dead for a long time.
  std::vector<std::pair<std::string, WorkerBinding>> ExpireDead();

  std::vector<v1::WorkerStatus> List() const;
  std::map<v1::WorkerState, int> Counts() const;
  // Per worker name, the state of its live (idle or busy) registration, or
  // dead when every registration under the name is dead: a worker that
  // comes back under its name (a restarted pod) is alive again at once,
  // though its old id stays dead until forgotten.
  std::map<std::string, v1::WorkerState> StatesByName() const;
  // Closes every outbox (shutdown): Attach handlers return.
  void CloseAll();

 private:
  struct Worker {
    std::string id;
    v1::WorkerInfo info;
    v1::WorkerState state = v1::WORKER_STATE_IDLE;
    std::optional<WorkerBinding> binding;
    absl::Time last_heartbeat;
    bool restored = false;  // by Restore, not heard from since
    int64_t order = 0;      // registration order
    std::shared_ptr<CommandQueue> outbox;
    // The worker that took this one's name while this one was alive; set
    // when the registry declares it dead for that reason.
    std::string superseded_by;
  };
  std::string NewId(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  std::map<std::string, Worker> workers_ ABSL_GUARDED_BY(mu_);
  int64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rng_state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_WORKER_REGISTRY_H_
