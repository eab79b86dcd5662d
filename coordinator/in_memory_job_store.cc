#include "coordinator/in_memory_job_store.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chronos::coordinator {
namespace {

v1::Job WithoutHistory(const v1::Job& job) {
  v1::Job copy = job;
  copy.clear_events();
  copy.clear_iterations();
  return copy;
}

template <typename T>
std::vector<T> After(const std::map<int64_t, T>& rows, int64_t after, int limit) {
  std::vector<T> out;
  for (auto it = rows.upper_bound(after); it != rows.end(); ++it) {
    if (limit > 0 && static_cast<int>(out.size()) >= limit) break;
    out.push_back(it->second);
  }
  return out;
}

}  // namespace

absl::StatusOr<StoreSnapshot> InMemoryJobStore::Load() {
  absl::MutexLock lock(&mu_);
  StoreSnapshot snapshot;
  snapshot.resource_version = resource_version_;
  std::vector<const Entry*> entries;
  for (const auto& [name, entry] : jobs_) entries.push_back(&entry);
  std::sort(entries.begin(), entries.end(),
            [](const Entry* a, const Entry* b) { return a->order < b->order; });
  for (const Entry* e : entries) {
    StoredJob stored;
    stored.job = e->job;
    if (!e->events.empty()) {
      stored.last_sequence = std::max(stored.last_sequence, e->events.rbegin()->first);
    }
    if (!e->iterations.empty()) {
      stored.last_sequence = std::max(stored.last_sequence, e->iterations.rbegin()->first);
    }
    snapshot.jobs.push_back(std::move(stored));
  }
  return snapshot;
}

absl::Status InMemoryJobStore::Append(const JobWrite& write, Entry* entry) {
  // Check first, then apply, so a failed write changes nothing.
  for (const v1::JobEvent& e : write.events) {
    if (entry->events.count(e.sequence()) || entry->iterations.count(e.sequence())) {
      return absl::AlreadyExistsError(absl::StrCat("sequence ", e.sequence(), " already stored"));
    }
  }
  std::set<int64_t> sequences;
  for (const v1::IterationRecord& r : write.iterations) {
    if (entry->events.count(r.sequence()) || entry->iterations.count(r.sequence()) ||
        !sequences.insert(r.sequence()).second) {
      return absl::AlreadyExistsError(absl::StrCat("sequence ", r.sequence(), " already stored"));
    }
  }
  for (const v1::JobEvent& e : write.events) entry->events[e.sequence()] = e;
  for (const v1::IterationRecord& r : write.iterations) {
    auto [it, fresh] = entry->iteration_sequence.try_emplace(r.iteration(), r.sequence());
    if (!fresh) {
      entry->iterations.erase(it->second);
      it->second = r.sequence();
    }
    entry->iterations[r.sequence()] = r;
  }
  entry->job = WithoutHistory(write.job);
  resource_version_ = std::max(resource_version_, write.resource_version);
  return absl::OkStatus();
}

absl::Status InMemoryJobStore::Create(const JobWrite& write) {
  absl::MutexLock lock(&mu_);
  const std::string& name = write.job.metadata().name();
  if (jobs_.count(name)) {
    return absl::AlreadyExistsError(absl::StrCat("job ", name, " exists"));
  }
  Entry entry;
  entry.order = next_order_++;
  absl::Status status = Append(write, &entry);
  if (!status.ok()) return status;
  jobs_.emplace(name, std::move(entry));
  return absl::OkStatus();
}

absl::Status InMemoryJobStore::Update(const JobWrite& write) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(write.job.metadata().name());
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", write.job.metadata().name(), " is not stored"));
  }
  return Append(write, &it->second);
}

absl::Status InMemoryJobStore::Delete(const std::string& name, int64_t resource_version) {
  absl::MutexLock lock(&mu_);
  if (jobs_.erase(name) == 0) {
    return absl::NotFoundError(absl::StrCat("job ", name, " is not stored"));
  }
  resource_version_ = std::max(resource_version_, resource_version);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::JobEvent>> InMemoryJobStore::Events(const std::string& name,
                                                                   int64_t after_sequence,
                                                                   int limit) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(name);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", name, " is not stored"));
  }
  return After(it->second.events, after_sequence, limit);
}

absl::StatusOr<std::vector<v1::IterationRecord>> InMemoryJobStore::Iterations(
    const std::string& name, int64_t after_sequence, int limit) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(name);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", name, " is not stored"));
  }
  return After(it->second.iterations, after_sequence, limit);
}

}  // namespace chronos::coordinator
