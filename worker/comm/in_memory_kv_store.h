// KeyValueStore held in this process's memory: for tests that run several
// ranks as threads, and for single-process jobs. Thread-safe.
#ifndef CHRONOS_WORKER_COMM_IN_MEMORY_KV_STORE_H_
#define CHRONOS_WORKER_COMM_IN_MEMORY_KV_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "worker/comm/kv_store.h"

namespace chronos::worker {

class InMemoryKeyValueStore : public KeyValueStore {
 public:
  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  absl::StatusOr<bool> Check(const std::vector<std::string>& keys) override;
  absl::StatusOr<bool> Delete(const std::string& key) override;
  absl::StatusOr<int64_t> NumKeys() override;

 private:
  absl::Mutex mu_;
  // Signalled on every Set/Add so blocked Gets re-check their key.
  absl::CondVar changed_;
  absl::flat_hash_map<std::string, std::string> map_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_IN_MEMORY_KV_STORE_H_
