// Following a job until it ends: the WatchJob stream, printed as a live
// progress line (or as newline-delimited JSON updates), shared by `watch`,
// `submit --wait` and `local run`. The stream is reopened from the last
// sequence seen when it breaks (a coordinator restart), so no update is
// lost or printed twice. Blocking; one watch per thread, cancellable from
// any thread through a CallCanceller.
#ifndef CHRONOS_CLIENT_JOB_WATCHER_H_
#define CHRONOS_CLIENT_JOB_WATCHER_H_

#include <functional>
#include <ostream>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/control.pb.h"
#include "client/control_client.h"

namespace chronos::client {

// Lets a signal-handling thread stop a blocking call: the call registers its
// context while it runs; Cancel() cancels the current and every later call.
class CallCanceller {
 public:
  // Returns false (and does not register) once Cancel() was called.
  bool Register(grpc::ClientContext* ctx);
  void Unregister(grpc::ClientContext* ctx);
  void Cancel();
  bool cancelled() const;

 private:
  mutable absl::Mutex mu_;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

struct WatchOptions {
  // Where the progress line and event lines go (stdout for `watch`, stderr
  // for `local run`, whose stdout is the summary).
  std::ostream* progress = nullptr;
  // Rewrite the progress line in place (a terminal) instead of one line per
  // iteration (logs, pipes).
  bool interactive = false;
  // Print each JobUpdate as one line of JSON instead (`watch -o json`).
  bool json_lines = false;
  // Replay history after this sequence; 0 = from the job's beginning.
  int64_t since_sequence = 0;
  // Called for every update, e.g. to collect iterations.
  std::function<void(const v1::JobUpdate&)> on_update;
  CallCanceller* canceller = nullptr;
  // How often to reopen a broken stream before giving up, and the pause
  // between tries (a coordinator restarting takes a few seconds).
  int max_reconnects = 5;
  absl::Duration reconnect_delay = absl::Seconds(1);
};

// Follows `name` until it is SUCCEEDED, FAILED or CANCELLED and returns the
// job as last seen. kCancelled when the canceller fired; the RPC's status
// when the job cannot be followed (kNotFound, kUnavailable after retries).
absl::StatusOr<v1::Job> WatchUntilTerminal(ControlClient& client, const std::string& name,
                                           const WatchOptions& options);

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_JOB_WATCHER_H_
