// The rendezvous key-value store workers use to bootstrap their transport
// (Gloo's store, NCCL unique ids), with c10d TCPStore semantics: set, get
// that waits for the key, add on decimal counters, check, delete.
//
// Keys live in scopes, one per job attempt ("jobs/<name>/attempt-<n>/"):
// a scope is opened when the attempt's assignments go out and closed when
// the attempt ends, which deletes its keys and wakes its waiters, so a
// restarted attempt never reads a stale address and memory stays bounded.
// Keys outside an open scope are refused (kFailedPrecondition), which also
// keeps a straggler from a previous attempt out of the new one.
// Thread-safe; Get blocks the calling thread for at most its timeout.
#ifndef CHRONOS_COORDINATOR_KV_STORE_H_
#define CHRONOS_COORDINATOR_KV_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace chronos::coordinator {

class KvStore {
 public:
  // Bounds against runaway clients: per key, per value, per scope.
  struct Limits {
    int64_t max_key_bytes = 1024;
    int64_t max_value_bytes = 4 << 20;
    int64_t max_keys_per_scope = 100000;
    int64_t max_bytes_per_scope = 256 << 20;
  };
  KvStore() : KvStore(Limits()) {}
  explicit KvStore(Limits limits) : limits_(limits) {}

  // Scope names end in '/'. Opening an open scope is a no-op; closing
  // removes its keys and ends waits on them with kAborted.
  void OpenScope(const std::string& prefix);
  void CloseScope(const std::string& prefix);
  bool IsScopeOpen(const std::string& prefix) const;

  absl::Status Set(const std::string& key, std::string value);
  // Waits until `key` exists, up to `timeout`, re-checking `cancelled`
  // (the caller's RPC went away, the server is stopping) every
  // `poll_interval`. kDeadlineExceeded on timeout, kCancelled when
  // `cancelled` returns true, kAborted when the scope closes meanwhile.
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout,
                                  const std::function<bool()>& cancelled,
                                  absl::Duration poll_interval = absl::Milliseconds(200));
  // Adds `delta` to the decimal integer stored at `key` (0 if absent) and
  // returns the new value; kInvalidArgument if the value is not an integer.
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta);
  // Whether all keys exist (none given: true).
  absl::StatusOr<bool> Check(const std::vector<std::string>& keys);
  absl::StatusOr<bool> Delete(const std::string& key);

  int64_t size() const;  // keys in all scopes

 private:
  struct Scope {
    std::map<std::string, std::string> keys;
    int64_t bytes = 0;
  };
  // The open scope `key` lies in, or an error naming the rule.
  absl::StatusOr<Scope*> ScopeOf(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Put(Scope* scope, const std::string& key, std::string value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Limits limits_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  std::map<std::string, Scope> scopes_ ABSL_GUARDED_BY(mu_);  // by prefix
};

// "jobs/<job>/attempt-<n>/": the scope of one job attempt.
std::string StorePrefix(const std::string& job, int attempt);

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_KV_STORE_H_
