// One attempt's progress, from the per-stage reports workers send after each
// iteration: an iteration is complete once every stage of every replica has
// reported it; iterations complete in order, except that after a
// coordinator restart the reports it had acknowledged come back late, so a
// later iteration may complete first and the earlier one fills its gap when
// it arrives. It also keeps each worker's newest checkpoint and which
// workers have finished. Pure bookkeeping: the JobController turns what it
// returns into records and status, under its lock. Not thread-safe.
#ifndef CHRONOS_COORDINATOR_PROGRESS_TRACKER_H_
#define CHRONOS_COORDINATOR_PROGRESS_TRACKER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "chronos/v1/job.pb.h"
#include "chronos/v1/worker.pb.h"

namespace chronos::coordinator {

// Iterations whose reports are incomplete are kept at most this far behind
// the newest one (a stage cannot lag further in a pipeline).
inline constexpr int64_t kMaxPartialIterations = 64;

class ProgressTracker {
 public:
  using StageKey = std::pair<int, int>;  // (data rank, device)
  using Reports = std::map<StageKey, v1::ProgressReport>;

  // Every iteration up to `complete_through` counts as complete (the
  // checkpoint an attempt resumes from, or the status after a restart).
  explicit ProgressTracker(int64_t complete_through = 0) : last_complete_(complete_through) {}

  // Adds the report of the stage at `key`. When it is the last of the
  // `num_stages` reports of an iteration not yet complete, returns them
  // (once per iteration).
  std::optional<Reports> Add(const v1::ProgressReport& report, StageKey key, int num_stages);
  // The newest iteration any stage has finished.
  int64_t Newest() const;
  int64_t last_complete() const { return last_complete_; }

  // Records `worker`'s newest checkpoint; returns the newest iteration whose
  // checkpoint every one of `workers` has written (0 if one has none): a
  // checkpoint is usable only once every stage has written its part.
  int64_t Checkpointed(const std::string& worker, int64_t iteration,
                       const std::vector<std::string>& workers);
  // Records that `worker` finished; true once `num_workers` have.
  bool Finished(const std::string& worker, int num_workers);

 private:
  std::map<int64_t, Reports> partial_;
  int64_t last_complete_ = 0;
  std::set<int64_t> completed_ahead_;
  std::map<std::string, int64_t> checkpoint_;
  std::set<std::string> finished_;
};

// The record of one complete iteration from its reports: the loss averaged
// over the replicas that hold the last chunk, the slowest stage's time,
// tokens summed over replicas, one DeviceIteration per stage. Fills
// iteration, loss, iteration_seconds, tokens_per_second, lr, grad_norm,
// offload_ratio and devices; not sequence, attempt or time.
v1::IterationRecord CombineReports(const ProgressTracker::Reports& reports, int64_t iteration);

// The oldest policy generation any stage ran the iteration under.
int64_t OldestGeneration(const ProgressTracker::Reports& reports);

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_PROGRESS_TRACKER_H_
