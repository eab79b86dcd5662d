#include "worker/daemon/progress_reporter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace chronos::worker {
namespace {

// The attempt is over for good: the coordinator no longer knows the job,
// or no longer has this worker in the attempt.
bool AttemptGone(const absl::Status& s) {
  return absl::IsNotFound(s) || absl::IsFailedPrecondition(s);
}

}  // namespace

ProgressReporter::ProgressReporter(SendFn send, std::function<void(const std::string&)> on_stop,
                                   std::function<void(const absl::Status&)> on_lost,
                                   Options options)
    : send_(std::move(send)),
      on_stop_(std::move(on_stop)),
      on_lost_(std::move(on_lost)),
      options_(options),
      thread_([this] { Loop(); }) {}

ProgressReporter::~ProgressReporter() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  thread_.join();
}

void ProgressReporter::Enqueue(v1::ProgressReport report) {
  auto room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closing_ || released_ || stopped_ ||
           static_cast<int64_t>(held_.size()) < options_.max_held;
  };
  bool full;
  {
    absl::MutexLock lock(&mu_);
    full = !room();
  }
  if (full) {
    LOG(WARNING) << "holding " << options_.max_held
                 << " progress reports the coordinator has not stored; training waits until "
                    "it stores some";
  }
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&room));
  // Reports of an attempt that is over have no one to go to.
  if (closing_ || stopped_) return;
  held_.push_back(std::move(report));
}

void ProgressReporter::Release() {
  absl::MutexLock lock(&mu_);
  released_ = true;
}

bool ProgressReporter::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return (held_.empty() && !sending_) || closing_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
  return held_.empty() && !sending_;
}

void ProgressReporter::ResendUnacknowledged() {
  absl::MutexLock lock(&mu_);
  sent_through_ = -1;
  ++rewinds_;
}

int64_t ProgressReporter::held() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(held_.size());
}

int64_t ProgressReporter::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

void ProgressReporter::Acknowledge(const v1::ProgressReport& sent, const v1::ProgressAck& ack,
                                   int64_t rewinds) {
  // A coordinator that does not track durability (next_iteration unset)
  // counts a report as recorded once it answered.
  const bool tracked = ack.next_iteration() > 0;
  const int64_t durable = tracked ? ack.durable_iteration() : sent.iteration();
  while (!held_.empty() && held_.front().iteration() <= durable) held_.pop_front();
  if (tracked && sent.iteration() >= ack.next_iteration()) {
    // Not taken: the coordinator lacks an earlier report. Go back to it.
    sent_through_ = ack.next_iteration() - 1;
    ++rewinds_;
  } else if (rewinds == rewinds_) {
    sent_through_ = std::max(sent_through_, sent.iteration());
  }
}

void ProgressReporter::Loop() {
  absl::Duration backoff = options_.min_backoff;  // after a failed call
  absl::Duration pause = options_.first_resend;   // before re-sending the newest
  while (true) {
    v1::ProgressReport report;
    int64_t rewinds = 0;
    {
      absl::MutexLock lock(&mu_);
      auto unsent = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return closing_ || (!held_.empty() && held_.back().iteration() > sent_through_);
      };
      if (held_.empty()) {
        mu_.Await(absl::Condition(&unsent));
      } else if (!mu_.AwaitWithTimeout(absl::Condition(&unsent), pause)) {
        // Everything was sent and some of it is not durable yet: ask again
        // with the newest (a duplicate the coordinator ignores), to learn
        // what it stored, or that it needs reports again.
        pause = std::min(pause * 2, options_.max_backoff);
      }
      if (closing_) return;
      if (held_.empty()) continue;
      auto next = std::find_if(held_.begin(), held_.end(), [this](const v1::ProgressReport& r) {
        mu_.AssertHeld();
        return r.iteration() > sent_through_;
      });
      if (next != held_.end()) {
        report = *next;
        pause = options_.first_resend;
      } else {
        report = held_.back();
      }
      sending_ = true;
      rewinds = rewinds_;
      ++calls_;
    }
    absl::StatusOr<v1::ProgressAck> ack = send_(report);
    std::string stop_reason;
    bool retry = false;
    if (ack.ok()) {
      if (ack->stop()) stop_reason = "the coordinator ended this attempt";
    } else if (AttemptGone(ack.status())) {
      stop_reason = absl::StrCat("the coordinator refused progress: ", ack.status().message());
    } else {
      // Unreachable, restarting, overloaded or failing to store: the
      // report stays and goes again.
      retry = true;
      if (!absl::IsUnavailable(ack.status()) && !absl::IsDeadlineExceeded(ack.status())) {
        LOG(WARNING) << "progress report of iteration " << report.iteration()
                     << " not taken, trying again: " << ack.status();
      }
    }
    // Before the report counts as handled, so that Flush() returning means
    // its consequences happened too.
    if (!stop_reason.empty()) on_stop_(stop_reason);
    absl::Status lost;
    {
      absl::MutexLock lock(&mu_);
      sending_ = false;
      if (!stop_reason.empty()) {
        stopped_ = true;
        held_.clear();
      } else if (ack.ok()) {
        Acknowledge(report, *ack, rewinds);
        backoff = options_.min_backoff;
        const int64_t needed = ack->next_iteration();
        if (needed > 0 && report.iteration() >= needed && !held_.empty() &&
            held_.front().iteration() > needed) {
          // It needs a report it had said was stored: the store went back
          // (restored from a backup). Nothing here can fill that gap; do not
          // spin on it.
          retry = true;
          if (!lost_) {
            lost_ = true;
            lost = absl::DataLossError(absl::StrCat(
                "the coordinator needs the progress report of iteration ", needed,
                " again, after it had acknowledged it as stored (was its job store restored "
                "from a backup?); ending the attempt so that the job resumes from its "
                "checkpoint"));
          }
        }
      }
    }
    if (!lost.ok()) {
      LOG(ERROR) << lost.message();
      on_lost_(lost);
    }
    if (retry) {
      // Interruptible pause before the next try.
      absl::MutexLock lock(&mu_);
      auto closing = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closing_; };
      mu_.AwaitWithTimeout(absl::Condition(&closing), backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
}

}  // namespace chronos::worker
