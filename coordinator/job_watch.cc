#include "coordinator/job_watch.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

namespace chronos::coordinator {

absl::StatusOr<int64_t> ChangeFeed::Count() {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) {
    return absl::UnavailableError("the coordinator is shutting down; watch again");
  }
  return count_;
}

void ChangeFeed::Wait(int64_t seen, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (count_ == seen && !shutting_down_) changed_.WaitWithTimeout(&mu_, timeout);
}

void ChangeFeed::Notify() {
  absl::MutexLock lock(&mu_);
  ++count_;
  changed_.SignalAll();
}

void ChangeFeed::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  changed_.SignalAll();
}

absl::StatusOr<bool> SendHistoryPage(JobStore* store, const std::string& name,
                                     int64_t* sent_sequence, const WriteUpdate& write,
                                     const std::function<bool()>& cancelled) {
  absl::StatusOr<std::vector<v1::JobEvent>> events =
      store->Events(name, *sent_sequence, kHistoryPage);
  absl::StatusOr<std::vector<v1::IterationRecord>> iterations =
      store->Iterations(name, *sent_sequence, kHistoryPage);
  if (!events.ok()) return events.status();
  if (!iterations.ok()) return iterations.status();
  const bool full_events = static_cast<int>(events->size()) == kHistoryPage;
  const bool full_iterations = static_cast<int>(iterations->size()) == kHistoryPage;
  // With a full page, merge only up to where both pages are complete.
  int64_t limit = std::numeric_limits<int64_t>::max();
  if (full_events) limit = std::min(limit, events->back().sequence());
  if (full_iterations) limit = std::min(limit, iterations->back().sequence());
  size_t ei = 0, ii = 0;
  while (ei < events->size() || ii < iterations->size()) {
    const bool take_event =
        ii >= iterations->size() ||
        (ei < events->size() && (*events)[ei].sequence() < (*iterations)[ii].sequence());
    v1::JobUpdate update;
    if (take_event) {
      if ((*events)[ei].sequence() > limit) break;
      update.set_sequence((*events)[ei].sequence());
      *update.mutable_event() = std::move((*events)[ei++]);
    } else {
      if ((*iterations)[ii].sequence() > limit) break;
      update.set_sequence((*iterations)[ii].sequence());
      *update.mutable_iteration() = std::move((*iterations)[ii++]);
    }
    if (cancelled()) return absl::CancelledError("the watch was cancelled");
    if (!write(update)) return absl::CancelledError("the client went away");
    *sent_sequence = update.sequence();
  }
  return full_events || full_iterations;
}

}  // namespace chronos::coordinator
