#include "worker/comm/kv_c10d_store.h"

#include <c10/util/Exception.h>

#include <chrono>
#include <string>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace chronos::worker {
namespace {

absl::Duration FromChrono(std::chrono::milliseconds ms) {
  // c10d spells "no timeout" as zero.
  if (ms == c10d::Store::kNoTimeout) return absl::InfiniteDuration();
  return absl::Milliseconds(ms.count());
}

std::chrono::milliseconds ToChrono(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return c10d::Store::kNoTimeout;
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// c10d's callers expect exceptions; this is the one place they are thrown.
void ThrowIfError(const absl::Status& s, const char* op) {
  TORCH_CHECK(s.ok(), "KvC10dStore::", op, ": ", s.ToString());
}

std::string ToString(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

class KvC10dStore : public c10d::Store {
 public:
  KvC10dStore(std::shared_ptr<KeyValueStore> kv, std::chrono::milliseconds timeout)
      : Store(timeout), kv_(std::move(kv)) {}

  // c10d clones a store to use it from another thread; ours is a handle
  // to a thread-safe client, so a clone shares it.
  c10::intrusive_ptr<c10d::Store> clone() override {
    return c10::make_intrusive<KvC10dStore>(kv_, timeout_);
  }

  void set(const std::string& key, const std::vector<uint8_t>& value) override {
    ThrowIfError(kv_->Set(key, ToString(value)), "set");
  }

  std::vector<uint8_t> compareSet(const std::string& key, const std::vector<uint8_t>& current,
                                  const std::vector<uint8_t>& desired) override {
    TORCH_CHECK(false, "KvC10dStore::compareSet is not supported (key ", key, ")");
  }

  std::vector<uint8_t> get(const std::string& key) override {
    absl::StatusOr<std::string> v = kv_->Get(key, FromChrono(timeout_));
    ThrowIfError(v.status(), "get");
    return std::vector<uint8_t>(v->begin(), v->end());
  }

  int64_t add(const std::string& key, int64_t value) override {
    absl::StatusOr<int64_t> v = kv_->Add(key, value);
    ThrowIfError(v.status(), "add");
    return *v;
  }

  bool deleteKey(const std::string& key) override {
    absl::StatusOr<bool> v = kv_->Delete(key);
    ThrowIfError(v.status(), "deleteKey");
    return *v;
  }

  bool check(const std::vector<std::string>& keys) override {
    absl::StatusOr<bool> v = kv_->Check(keys);
    ThrowIfError(v.status(), "check");
    return *v;
  }

  int64_t getNumKeys() override {
    absl::StatusOr<int64_t> v = kv_->NumKeys();
    ThrowIfError(v.status(), "getNumKeys");
    return *v;
  }

  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }

  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override {
    const absl::Duration total = FromChrono(timeout);
    const absl::Time deadline = absl::Now() + total;
    for (const std::string& key : keys) {
      // One deadline for all keys, as c10d's TCPStore does.
      absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
      ThrowIfError(kv_->Get(key, left).status(), "wait");
    }
  }

 private:
  std::shared_ptr<KeyValueStore> kv_;
};

}  // namespace

c10::intrusive_ptr<c10d::Store> NewKvC10dStore(std::shared_ptr<KeyValueStore> kv,
                                               absl::Duration timeout) {
  return c10::make_intrusive<KvC10dStore>(std::move(kv), ToChrono(timeout));
}

}  // namespace chronos::worker
