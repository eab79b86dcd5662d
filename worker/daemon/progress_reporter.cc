#include "worker/daemon/progress_reporter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace chronos::worker {

ProgressReporter::ProgressReporter(SendFn send, std::function<void(const std::string&)> on_stop,
                                   absl::Duration max_backoff)
    : send_(std::move(send)),
      on_stop_(std::move(on_stop)),
      max_backoff_(max_backoff),
      thread_([this] { Loop(); }) {}

ProgressReporter::~ProgressReporter() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  thread_.join();
}

void ProgressReporter::Enqueue(v1::ProgressReport report) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(report));
}

bool ProgressReporter::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return (queue_.empty() && !sending_) || closing_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
  return queue_.empty() && !sending_;
}

int64_t ProgressReporter::delivered() const {
  absl::MutexLock lock(&mu_);
  return delivered_;
}

void ProgressReporter::ResendRecent() {
  absl::MutexLock lock(&mu_);
  // A report being sent right now is at the front of queue_ and stays
  // there; resends go after it, in their original order.
  const size_t at = sending_ && !queue_.empty() ? 1 : 0;
  queue_.insert(queue_.begin() + at, recent_.begin(), recent_.end());
  recent_.clear();
}

void ProgressReporter::Loop() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    v1::ProgressReport report;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closing_; };
      mu_.Await(absl::Condition(&ready));
      if (closing_) return;
      report = queue_.front();
      sending_ = true;
    }
    absl::StatusOr<v1::ProgressAck> ack = send_(report);
    bool retry = false;
    std::string stop_reason;
    if (ack.ok()) {
      if (ack->stop()) stop_reason = "the coordinator ended this attempt";
    } else if (absl::IsUnavailable(ack.status()) || absl::IsDeadlineExceeded(ack.status()) ||
               absl::IsResourceExhausted(ack.status()) || absl::IsInternal(ack.status())) {
      retry = true;
    } else {
      LOG(WARNING) << "progress report of iteration " << report.iteration()
                   << " refused: " << ack.status();
      if (absl::IsNotFound(ack.status()) || absl::IsFailedPrecondition(ack.status())) {
        stop_reason = absl::StrCat("the coordinator refused progress: ", ack.status().message());
      }
    }
    // Before the report counts as handled, so that Flush() returning means
    // its consequences happened too.
    if (!stop_reason.empty()) on_stop_(stop_reason);
    {
      absl::MutexLock lock(&mu_);
      sending_ = false;
      if (!retry) {
        if (ack.ok()) {
          recent_.push_back(std::move(queue_.front()));
          if (recent_.size() > kRecent) recent_.pop_front();
        }
        queue_.pop_front();
        ++delivered_;
        backoff = absl::Milliseconds(100);
      }
    }
    if (retry) {
      // Interruptible pause before the next try.
      absl::MutexLock lock(&mu_);
      auto closing = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closing_; };
      mu_.AwaitWithTimeout(absl::Condition(&closing), backoff);
      backoff = std::min(backoff * 2, max_backoff_);
    }
  }
}

}  // namespace chronos::worker
