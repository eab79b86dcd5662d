// Delivers one assignment's ProgressReports to the coordinator in order, on
// its own thread, so training never waits on the network. A report that
// cannot be delivered because the coordinator is unreachable (restarting)
// is retried with back-off until it goes through: the coordinator completes
// an iteration only when every stage reported it, so none may be dropped.
// Reports the coordinator refuses for good (the job or attempt is gone) are
// dropped and `on_stop` is called, as for an ack asking the worker to stop.
//
// Thread-safe.
#ifndef CHRONOS_WORKER_DAEMON_PROGRESS_REPORTER_H_
#define CHRONOS_WORKER_DAEMON_PROGRESS_REPORTER_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/worker.pb.h"

namespace chronos::worker {

class ProgressReporter {
 public:
  using SendFn = std::function<absl::StatusOr<v1::ProgressAck>(const v1::ProgressReport&)>;
  // `on_stop(reason)` runs on the reporter's thread.
  ProgressReporter(SendFn send, std::function<void(const std::string&)> on_stop,
                   absl::Duration max_backoff = absl::Seconds(2));
  // Abandons whatever is still queued.
  ~ProgressReporter();

  void Enqueue(v1::ProgressReport report);
  // Waits until everything queued so far is delivered (or dropped): true,
  // or false after `timeout`.
  bool Flush(absl::Duration timeout);
  // Number of reports delivered (tests).
  int64_t delivered() const;
  // Sends the last delivered reports again, ahead of what is queued: a
  // coordinator killed between acknowledging one stage's report of an
  // iteration and hearing from the others lost that acknowledged report
  // with its memory. Reports are idempotent at the coordinator.
  void ResendRecent();

 private:
  void Loop();

  const SendFn send_;
  const std::function<void(const std::string&)> on_stop_;
  const absl::Duration max_backoff_;
  mutable absl::Mutex mu_;
  std::deque<v1::ProgressReport> queue_ ABSL_GUARDED_BY(mu_);
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  int64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  // The last kRecent delivered reports, oldest first.
  static constexpr size_t kRecent = 16;
  std::deque<v1::ProgressReport> recent_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_PROGRESS_REPORTER_H_
