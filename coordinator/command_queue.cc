#include "coordinator/command_queue.h"

#include <utility>

namespace chronos::coordinator {

bool CommandQueue::Push(v1::WorkerCommand command) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  commands_.push_back(std::move(command));
  ready_.Signal();
  return true;
}

CommandQueue::PopResult CommandQueue::Pop(absl::Duration timeout, v1::WorkerCommand* out) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (commands_.empty() && !closed_) {
    if (ready_.WaitWithDeadline(&mu_, deadline)) break;
  }
  // Commands queued before Close() are still delivered, so a StopCommand
  // pushed just before shutdown reaches the worker.
  if (!commands_.empty()) {
    *out = std::move(commands_.front());
    commands_.pop_front();
    return PopResult::kCommand;
  }
  return closed_ ? PopResult::kClosed : PopResult::kTimeout;
}

void CommandQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  ready_.SignalAll();
}

bool CommandQueue::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

}  // namespace chronos::coordinator
