#include "coordinator/progress_tracker.h"

#include <algorithm>
#include <limits>

#include "rpc/progress_window.h"

namespace chronos::coordinator {

ProgressTracker::Added ProgressTracker::Add(const v1::ProgressReport& report, StageKey key) {
  const int64_t it = report.iteration();
  const int64_t delivered = DeliveredBy(key);
  Added added;
  if (it <= delivered) {
    added.taken = true;
  } else if (it == delivered + 1 && it <= last_complete_ + rpc::kMaxUnacknowledgedReports) {
    partial_[it][key] = report;
    delivered_[key] = it;
    added.taken = true;
  }
  added.next_iteration = DeliveredBy(key) + 1;
  return added;
}

int64_t ProgressTracker::CompleteThrough(int num_stages) const {
  int64_t through = last_complete_;
  for (auto it = partial_.begin(); it != partial_.end() && it->first == through + 1; ++it) {
    if (static_cast<int>(it->second.size()) < num_stages) break;
    through = it->first;
  }
  return through;
}

void ProgressTracker::MarkComplete(int64_t iteration) {
  if (iteration <= last_complete_) return;
  last_complete_ = iteration;
  partial_.erase(partial_.begin(), partial_.upper_bound(iteration));
}

int64_t ProgressTracker::DeliveredBy(StageKey key) const {
  auto it = delivered_.find(key);
  return it == delivered_.end() ? last_complete_ : std::max(it->second, last_complete_);
}

int64_t ProgressTracker::Newest() const {
  return partial_.empty() ? last_complete_ : std::max(last_complete_, partial_.rbegin()->first);
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
