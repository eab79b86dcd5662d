#include "worker/comm/in_memory_kv_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chronos::worker {

absl::Status InMemoryKeyValueStore::Set(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  map_[key] = value;
  changed_.SignalAll();
  return absl::OkStatus();
}

absl::StatusOr<std::string> InMemoryKeyValueStore::Get(const std::string& key,
                                                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (true) {
    auto it = map_.find(key);
    if (it != map_.end()) return it->second;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("key '", key, "' not set within ", absl::FormatDuration(timeout)));
    }
    // May wake early or spuriously; the loop re-checks key and clock.
    changed_.WaitWithDeadline(&mu_, deadline);
  }
}

absl::StatusOr<int64_t> InMemoryKeyValueStore::Add(const std::string& key, int64_t delta) {
  absl::MutexLock lock(&mu_);
  int64_t value = 0;
  auto it = map_.find(key);
  if (it != map_.end() && !absl::SimpleAtoi(it->second, &value)) {
    return absl::FailedPreconditionError(absl::StrCat("key '", key, "' does not hold an integer"));
  }
  value += delta;
  map_[key] = absl::StrCat(value);
  changed_.SignalAll();
  return value;
}

absl::StatusOr<bool> InMemoryKeyValueStore::Check(const std::vector<std::string>& keys) {
  absl::MutexLock lock(&mu_);
  for (const std::string& key : keys) {
    if (!map_.contains(key)) return false;
  }
  return true;
}

absl::StatusOr<bool> InMemoryKeyValueStore::Delete(const std::string& key) {
  absl::MutexLock lock(&mu_);
  return map_.erase(key) > 0;
}

absl::StatusOr<int64_t> InMemoryKeyValueStore::NumKeys() {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(map_.size());
}

}  // namespace chronos::worker
