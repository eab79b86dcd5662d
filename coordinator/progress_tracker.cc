#include "coordinator/progress_tracker.h"

#include <algorithm>
#include <limits>

namespace chronos::coordinator {

std::optional<ProgressTracker::Reports> ProgressTracker::Add(const v1::ProgressReport& report,
                                                             StageKey key, int num_stages) {
  const int64_t it = report.iteration();
  std::optional<Reports> done;
  if (it > last_complete_ && completed_ahead_.count(it) == 0) {
    Reports& reports = partial_[it];
    reports[key] = report;
    if (static_cast<int>(reports.size()) == num_stages) {
      done = std::move(partial_.extract(it).mapped());
      // Move the mark over what is now contiguous. A gap that no late
      // report fills within kMaxPartialIterations is given up, as partial
      // reports are, so the set stays small.
      completed_ahead_.insert(it);
      while (!completed_ahead_.empty() &&
             (*completed_ahead_.begin() == last_complete_ + 1 ||
              static_cast<int64_t>(completed_ahead_.size()) > kMaxPartialIterations)) {
        last_complete_ = *completed_ahead_.begin();
        completed_ahead_.erase(completed_ahead_.begin());
      }
    }
    while (!partial_.empty() && partial_.begin()->first + kMaxPartialIterations < it) {
      partial_.erase(partial_.begin());
    }
  }
  return done;
}

int64_t ProgressTracker::Newest() const {
  int64_t newest = last_complete_;
  if (!completed_ahead_.empty()) newest = std::max(newest, *completed_ahead_.rbegin());
  if (!partial_.empty()) newest = std::max(newest, partial_.rbegin()->first);
  return newest;
}

int64_t ProgressTracker::Checkpointed(const std::string& worker, int64_t iteration,
                                      const std::vector<std::string>& workers) {
  int64_t& mine = checkpoint_[worker];
  mine = std::max(mine, iteration);
  int64_t durable = std::numeric_limits<int64_t>::max();
  for (const std::string& w : workers) {
    auto it = checkpoint_.find(w);
    durable = std::min(durable, it == checkpoint_.end() ? 0 : it->second);
  }
  return workers.empty() ? 0 : durable;
}

bool ProgressTracker::Finished(const std::string& worker, int num_workers) {
  finished_.insert(worker);
  return static_cast<int>(finished_.size()) == num_workers;
}

v1::IterationRecord CombineReports(const ProgressTracker::Reports& reports, int64_t iteration) {
  v1::IterationRecord rec;
  rec.set_iteration(iteration);
  double loss_sum = 0;
  int loss_count = 0;
  double seconds = 0;
  std::map<int, int64_t> tokens_by_rank;
  const v1::ProgressReport* head = nullptr;  // the report carrying the loss
  for (const auto& [key, r] : reports) {
    if (r.has_loss()) {
      loss_sum += r.loss();
      ++loss_count;
      if (head == nullptr) head = &r;
    }
    seconds = std::max(seconds, r.device().iteration_seconds());
    // Every stage of a replica reports the replica's tokens.
    tokens_by_rank[key.first] = std::max(tokens_by_rank[key.first], r.tokens());
    v1::DeviceIteration* d = rec.add_devices();
    *d = r.device();
    d->set_device(key.second);
    d->set_data_rank(key.first);
  }
  if (reports.empty()) return rec;
  if (head == nullptr) head = &reports.begin()->second;
  int64_t tokens = 0;
  for (const auto& [rank, t] : tokens_by_rank) tokens += t;
  if (loss_count > 0) rec.set_loss(loss_sum / loss_count);
  rec.set_iteration_seconds(seconds);
  rec.set_tokens_per_second(seconds > 0 ? tokens / seconds : 0);
  rec.set_lr(head->lr());
  rec.set_grad_norm(head->grad_norm());
  rec.set_offload_ratio(head->offload_ratio());
  return rec;
}

int64_t OldestGeneration(const ProgressTracker::Reports& reports) {
  int64_t oldest = std::numeric_limits<int64_t>::max();
  for (const auto& [key, r] : reports) oldest = std::min(oldest, r.policy_generation());
  return oldest;
}

}  // namespace chronos::coordinator
