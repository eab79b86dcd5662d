#include "coordinator/kv_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chronos::coordinator {

std::string StorePrefix(const std::string& job, int attempt) {
  return absl::StrCat("jobs/", job, "/attempt-", attempt, "/");
}

void KvStore::OpenScope(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  scopes_.try_emplace(prefix);
}

void KvStore::CloseScope(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  if (scopes_.erase(prefix) > 0) changed_.SignalAll();
}

bool KvStore::IsScopeOpen(const std::string& prefix) const {
  absl::MutexLock lock(&mu_);
  return scopes_.count(prefix) > 0;
}

int64_t KvStore::size() const {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (const auto& [prefix, scope] : scopes_) n += scope.keys.size();
  return n;
}

absl::StatusOr<KvStore::Scope*> KvStore::ScopeOf(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("key must not be empty");
  if (static_cast<int64_t>(key.size()) > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key is ", key.size(), " bytes; the limit is ", limits_.max_key_bytes));
  }
  // Scopes never nest (one per attempt), so the last prefix <= key is the
  // only candidate.
  auto it = scopes_.upper_bound(key);
  if (it != scopes_.begin()) {
    --it;
    if (absl::StartsWith(key, it->first) && key.size() > it->first.size()) {
      return &it->second;
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("key '", key,
                   "' is not under the store_prefix of a running job attempt; prefix "
                   "every key with Assignment.store_prefix (jobs/<job>/attempt-<n>/)"));
}

absl::Status KvStore::Put(Scope* scope, const std::string& key, std::string value) {
  if (static_cast<int64_t>(value.size()) > limits_.max_value_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("value for key '", key, "' is ", value.size(),
                                                   " bytes; the limit is ",
                                                   limits_.max_value_bytes));
  }
  auto it = scope->keys.find(key);
  const int64_t old_bytes = it == scope->keys.end() ? 0 : static_cast<int64_t>(it->second.size());
  const int64_t new_bytes = scope->bytes - old_bytes + value.size();
  if (it == scope->keys.end() &&
      static_cast<int64_t>(scope->keys.size()) >= limits_.max_keys_per_scope) {
    return absl::ResourceExhaustedError(absl::StrCat("the job attempt's store holds ",
                                                     scope->keys.size(), " keys; the limit is ",
                                                     limits_.max_keys_per_scope));
  }
  if (new_bytes > limits_.max_bytes_per_scope) {
    return absl::ResourceExhaustedError(absl::StrCat("the job attempt's store would hold ",
                                                     new_bytes, " bytes; the limit is ",
                                                     limits_.max_bytes_per_scope));
  }
  scope->bytes = new_bytes;
  scope->keys[key] = std::move(value);
  changed_.SignalAll();
  return absl::OkStatus();
}

absl::Status KvStore::Set(const std::string& key, std::string value) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Scope*> scope = ScopeOf(key);
  if (!scope.ok()) return scope.status();
  return Put(*scope, key, std::move(value));
}

absl::StatusOr<std::string> KvStore::Get(const std::string& key, absl::Duration timeout,
                                         const std::function<bool()>& cancelled,
                                         absl::Duration poll_interval) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (true) {
    absl::StatusOr<Scope*> scope = ScopeOf(key);
    if (!scope.ok()) {
      // The scope closed while we waited: the attempt is over.
      return scope.status().code() == absl::StatusCode::kFailedPrecondition
                 ? absl::AbortedError(absl::StrCat(
                       "key '", key, "': the job attempt ended before the key was set"))
                 : scope.status();
    }
    auto it = (*scope)->keys.find(key);
    if (it != (*scope)->keys.end()) return it->second;
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("key '", key, "' was not set within ", absl::FormatDuration(timeout)));
    }
    if (cancelled && cancelled()) {
      return absl::CancelledError("the call was cancelled");
    }
    changed_.WaitWithTimeout(&mu_, std::min(deadline - now, poll_interval));
  }
}

absl::StatusOr<int64_t> KvStore::Add(const std::string& key, int64_t delta) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Scope*> scope = ScopeOf(key);
  if (!scope.ok()) return scope.status();
  int64_t value = 0;
  auto it = (*scope)->keys.find(key);
  if (it != (*scope)->keys.end() && !absl::SimpleAtoi(it->second, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("key '", key, "' does not hold a decimal integer"));
  }
  value += delta;
  absl::Status s = Put(*scope, key, absl::StrCat(value));
  if (!s.ok()) return s;
  return value;
}

absl::StatusOr<bool> KvStore::Check(const std::vector<std::string>& keys) {
  absl::MutexLock lock(&mu_);
  for (const std::string& key : keys) {
    absl::StatusOr<Scope*> scope = ScopeOf(key);
    if (!scope.ok()) return scope.status();
    if ((*scope)->keys.count(key) == 0) return false;
  }
  return true;
}

absl::StatusOr<bool> KvStore::Delete(const std::string& key) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Scope*> scope = ScopeOf(key);
  if (!scope.ok()) return scope.status();
  auto it = (*scope)->keys.find(key);
  if (it == (*scope)->keys.end()) return false;
  (*scope)->bytes -= it->second.size();
  (*scope)->keys.erase(it);
  return true;
}

}  // namespace chronos::coordinator
