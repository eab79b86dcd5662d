// The coordinator's memory of order searches (core/order_search.h's
// OrderSearchMemo): re-plans of a job (a policy change, recovery at the same
// width, an out-of-memory fault) find the orders its submission searched
// instead of searching for tens of seconds again. Bounded: past kMaxEntries
// it starts afresh. Thread-safe; planning threads share it.
#ifndef CHRONOS_COORDINATOR_SEARCH_MEMO_H_
#define CHRONOS_COORDINATOR_SEARCH_MEMO_H_

#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/order_search.h"

namespace chronos::coordinator {

class SearchMemo : public OrderSearchMemo {
 public:
  static constexpr size_t kMaxEntries = 32;

  std::optional<SearchedOrders> Find(const std::string& key) override {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }
  void Insert(const std::string& key, const SearchedOrders& value) override {
    absl::MutexLock lock(&mu_);
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.insert_or_assign(key, value);
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, SearchedOrders> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_SEARCH_MEMO_H_
