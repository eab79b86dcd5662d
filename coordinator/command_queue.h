// The outbox of one worker's Attach stream: commands the coordinator pushes
// (assignment, policy update, checkpoint, stop) wait here until the stream
// handler writes them. Closed when the stream is replaced (the worker
// re-attached) or the coordinator shuts down, so the old handler returns.
// Thread-safe: any thread pushes, the stream handler pops.
#ifndef CHRONOS_COORDINATOR_COMMAND_QUEUE_H_
#define CHRONOS_COORDINATOR_COMMAND_QUEUE_H_

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/worker.pb.h"

namespace chronos::coordinator {

class CommandQueue {
 public:
  enum class PopResult { kCommand, kTimeout, kClosed };

  // False when closed (the command is dropped: the worker will get its
  // state again when it re-attaches).
  bool Push(v1::WorkerCommand command);
  // Waits at most `timeout` for a command.
  PopResult Pop(absl::Duration timeout, v1::WorkerCommand* out);
  void Close();
  bool closed() const;

 private:
  mutable absl::Mutex mu_;
  absl::CondVar ready_;
  std::deque<v1::WorkerCommand> commands_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_COMMAND_QUEUE_H_
