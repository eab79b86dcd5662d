// A small key-value store for rendezvous: Gloo's process groups exchange
// their addresses through it. The coordinator serves one over gRPC; tests use
// InMemoryKeyValueStore. KvC10dStore (kv_c10d_store.h) adapts either to
// c10d::Store.
//
// Contract for implementations: thread-safe (Gloo calls from several threads
// at once); values are opaque bytes; Add keeps its counter as the decimal
// text of the value, so Get on a counter key returns e.g. "3" (c10d's stores
// do the same and some callers rely on it).
#ifndef CHRONOS_WORKER_COMM_KV_STORE_H_
#define CHRONOS_WORKER_COMM_KV_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace chronos::worker {

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;

  virtual absl::Status Set(const std::string& key, const std::string& value) = 0;
  // Blocks until `key` exists or `timeout` passes (kDeadlineExceeded).
  // absl::InfiniteDuration() waits forever.
  virtual absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) = 0;
  // Adds `delta` to the counter at `key` (absent = 0); returns the new value.
  // kFailedPrecondition if the key holds something that is not an integer.
  virtual absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) = 0;
  // Whether every key in `keys` exists now (does not wait).
  virtual absl::StatusOr<bool> Check(const std::vector<std::string>& keys) = 0;
  // Removes `key`; returns whether it existed.
  virtual absl::StatusOr<bool> Delete(const std::string& key) = 0;
  // Number of keys; optional (c10d asks for it only in diagnostics).
  virtual absl::StatusOr<int64_t> NumKeys() {
    return absl::UnimplementedError("NumKeys is not supported by this store");
  }
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_KV_STORE_H_
