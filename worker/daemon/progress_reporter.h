// Delivers one assignment's ProgressReports to the coordinator, on its own
// thread, so training never waits on the network, and keeps each report
// until the coordinator says its iteration is durable (recorded in the job
// store: chronos.v1.ProgressAck.durable_iteration). Nothing is dropped on
// the way: a coordinator that restarts loses only what it had not stored,
// and gets it again:
//  - reports go out in iteration order, one call at a time; one the
//    coordinator could not take (it lost an earlier one) is answered with
//    the iteration it needs next, and sending starts again from there;
//  - after a reconnect (the coordinator sends the Assignment again),
//    ResendUnacknowledged() sends everything not yet durable again;
//  - while every report has been sent but some are not durable yet (the
//    other stages have not reported that iteration), the newest is sent
//    again after a pause (first_resend, doubling to max_backoff), so a worker with
//    nothing new to say still learns that its reports are stored (or that
//    the coordinator needs them again).
// Calls that fail because the coordinator is unreachable, overloaded or
// failing are retried with back-off; only "the attempt is over" (an ack
// with stop, or the job or assignment is gone) ends delivery, dropping what
// is held and calling `on_stop`. A coordinator that asks again for a report
// it had acknowledged as stored (its store was restored from a backup
// meanwhile) cannot be given it: `on_lost` is called once, so that the
// attempt ends with a fault and the job resumes from its checkpoint,
// running (and recording) those iterations again.
//
// Memory is bounded: at most rpc::kMaxUnacknowledgedReports are held, and
// Enqueue() blocks (pausing training) while that many are, until the
// coordinator acknowledges some or Release() is called.
//
// Thread-safe.
#ifndef CHRONOS_WORKER_DAEMON_PROGRESS_REPORTER_H_
#define CHRONOS_WORKER_DAEMON_PROGRESS_REPORTER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/worker.pb.h"
#include "rpc/progress_window.h"

namespace chronos::worker {

struct ProgressReporterOptions {
  absl::Duration min_backoff = absl::Milliseconds(100);  // after a failed call
  absl::Duration max_backoff = absl::Seconds(2);
  // The first pause before the newest report goes again (then doubling to
  // max_backoff): long enough that a training step usually brings a new
  // report first.
  absl::Duration first_resend = absl::Milliseconds(500);
  int64_t max_held = rpc::kMaxUnacknowledgedReports;
};

class ProgressReporter {
 public:
  using Options = ProgressReporterOptions;
  using SendFn = std::function<absl::StatusOr<v1::ProgressAck>(const v1::ProgressReport&)>;
  // `on_stop(reason)` and `on_lost(status)` run on the reporter's thread.
  ProgressReporter(SendFn send, std::function<void(const std::string&)> on_stop,
                   std::function<void(const absl::Status&)> on_lost, Options options = Options());
  // Abandons whatever is still held.
  ~ProgressReporter();

  // Holds `report` for delivery (iterations increase from one call to the
  // next). Blocks while max_held reports are held, until some are durable,
  // delivery ended or Release() was called.
  void Enqueue(v1::ProgressReport report);
  // From now on Enqueue never blocks (the attempt is stopping: its next
  // report, if any, is its last).
  void Release();
  // Waits until every report enqueued so far is durable at the coordinator
  // (or dropped because the attempt is over): true, or false after
  // `timeout`.
  bool Flush(absl::Duration timeout);
  // After a reconnect: sends every report not yet durable again, in order
  // (a restarted coordinator lost what it had not stored).
  void ResendUnacknowledged();

  // For tests: reports held (not yet durable), and calls made.
  int64_t held() const;
  int64_t calls() const;

 private:
  void Loop();
  // Applies the (not stop) ack of `sent`, made when rewinds_ was `rewinds`.
  void Acknowledge(const v1::ProgressReport& sent, const v1::ProgressAck& ack, int64_t rewinds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SendFn send_;
  const std::function<void(const std::string&)> on_stop_;
  const std::function<void(const absl::Status&)> on_lost_;
  const Options options_;
  mutable absl::Mutex mu_;
  // Reports not yet durable, oldest first.
  std::deque<v1::ProgressReport> held_ ABSL_GUARDED_BY(mu_);
  // Every held report with an iteration up to this one was sent.
  int64_t sent_through_ ABSL_GUARDED_BY(mu_) = -1;
  // Bumped when sending starts again from an earlier report, so that a
  // reply to a call made before does not move sent_through_ past it.
  int64_t rewinds_ ABSL_GUARDED_BY(mu_) = 0;
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // the attempt is over
  bool lost_ ABSL_GUARDED_BY(mu_) = false;     // on_lost was called
  int64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_PROGRESS_REPORTER_H_
