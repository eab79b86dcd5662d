// What WatchJob needs besides the job map: a change feed that watchers wait
// on (never on the JobController's mutex, so a slow watcher never holds up a
// mutation), and the replay of a job's stored history in pages, events and
// iteration records merged by sequence.
#ifndef CHRONOS_COORDINATOR_JOB_WATCH_H_
#define CHRONOS_COORDINATOR_JOB_WATCH_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/control.pb.h"
#include "coordinator/job_store.h"

namespace chronos::coordinator {

// Rows per store read while replaying history, so one watcher of a long job
// never holds all of it in memory at once.
inline constexpr int kHistoryPage = 512;

// Thread-safe.
class ChangeFeed {
 public:
  // The number of changes so far; kUnavailable once shut down.
  absl::StatusOr<int64_t> Count();
  // Returns when the count has moved past `seen`, at Shutdown, or after
  // `timeout`.
  void Wait(int64_t seen, absl::Duration timeout);
  void Notify();
  void Shutdown();

 private:
  absl::Mutex mu_;
  absl::CondVar changed_;
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

using WriteUpdate = std::function<bool(const v1::JobUpdate&)>;

// Sends one page of `name`'s stored history after *sent_sequence (events
// and iteration records merged by sequence; with a full page, only as far
// as both kinds are known to be complete) and advances *sent_sequence.
// True when a page was full, so more may follow. kNotFound when the job is
// gone, kCancelled when `write` fails or `cancelled` says so.
absl::StatusOr<bool> SendHistoryPage(JobStore* store, const std::string& name,
                                     int64_t* sent_sequence, const WriteUpdate& write,
                                     const std::function<bool()>& cancelled);

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_JOB_WATCH_H_
