// One attempt's progress, from the per-stage reports workers send after each
// iteration: an iteration is complete once every stage of every replica has
// reported it. Each stage's reports are taken in iteration order without a
// gap, so iterations complete strictly in order and last_complete() is the
// whole story of what is done: a report that would leave a gap (one before
// it was lost, e.g. with a restarted coordinator's memory) is not taken, and
// the caller asks the worker to send again from the one missing
// (chronos.v1.ProgressAck.next_iteration). Reports are taken at most
// rpc::kMaxUnacknowledgedReports past last_complete(), so the tracker holds
// at most that many iterations' worth. It also keeps each worker's newest
// checkpoint and which workers have finished. Pure bookkeeping: the
// JobController turns what it returns into records and status, under its
// lock, and marks an iteration complete only once its record is stored.
// Not thread-safe.
#ifndef CHRONOS_COORDINATOR_PROGRESS_TRACKER_H_
#define CHRONOS_COORDINATOR_PROGRESS_TRACKER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "chronos/v1/job.pb.h"
#include "chronos/v1/worker.pb.h"

namespace chronos::coordinator {

class ProgressTracker {
 public:
  using StageKey = std::pair<int, int>;  // (data rank, device)
  using Reports = std::map<StageKey, v1::ProgressReport>;

  // Every iteration up to `complete_through` is complete: its record is
  // stored (the checkpoint an attempt resumes from, or after a coordinator
  // restart the stored status's iteration, committed with its record).
  explicit ProgressTracker(int64_t complete_through = 0) : last_complete_(complete_through) {}

  struct Added {
    // The report is held (now or before), or its iteration is complete.
    bool taken = false;
    // The iteration this stage owes next.
    int64_t next_iteration = 0;
  };
  // Takes the report of the stage at `key` if it is the next one that stage
  // owes, and within the window; a report of an iteration the stage already
  // delivered is a harmless duplicate (taken, changes nothing).
  Added Add(const v1::ProgressReport& report, StageKey key);

  // The newest iteration n such that every iteration after last_complete()
  // up to n has all `num_stages` reports (last_complete() if none): those
  // are ready to be recorded, in order, with Ready(i).
  int64_t CompleteThrough(int num_stages) const;
  const Reports& Ready(int64_t iteration) const { return partial_.at(iteration); }
  // After their records are stored: iterations up to `iteration` are
  // complete, and their reports are dropped.
  void MarkComplete(int64_t iteration);

  // The newest iteration any stage has delivered.
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
  // The newest iteration `key` has delivered (complete or held).
  int64_t DeliveredBy(StageKey key) const;

  std::map<int64_t, Reports> partial_;  // iterations after last_complete_
  std::map<StageKey, int64_t> delivered_;
  int64_t last_complete_ = 0;
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
