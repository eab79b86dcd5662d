#include "worker/pinned_pool.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace chronos::worker {

HostMemorySource PageableHostMemory() {
  HostMemorySource s;
  s.alloc = [](size_t bytes) -> void* {
    return std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  };
  s.free = [](void* p) { std::free(p); };
  s.pinned = false;
  return s;
}

PinnedPool::PinnedPool(HostMemorySource source, int64_t limit_bytes) : source_(std::move(source)) {
  stats_.limit_bytes = std::max<int64_t>(0, limit_bytes);
}

PinnedPool::~PinnedPool() {
  absl::MutexLock l(&mu_);
  for (auto& [size, ptr] : free_) source_.free(ptr);
  free_.clear();
}

size_t PinnedPool::RoundUp(size_t bytes) {
  return std::max<size_t>(1, (bytes + kGranule - 1) / kGranule) * kGranule;
}

bool PinnedPool::MakeRoom(size_t needed) {
  while (stats_.reserved_bytes + static_cast<int64_t>(needed) > stats_.limit_bytes &&
         !free_.empty()) {
    auto largest = std::prev(free_.end());
    source_.free(largest->second);
    stats_.reserved_bytes -= static_cast<int64_t>(largest->first);
    free_.erase(largest);
  }
  return stats_.reserved_bytes + static_cast<int64_t>(needed) <= stats_.limit_bytes;
}

void* PinnedPool::Allocate(size_t bytes) {
  const size_t size = RoundUp(bytes);
  absl::MutexLock l(&mu_);
  void* ptr = nullptr;
  size_t got = 0;
  // Best fit among cached blocks, but never more than twice the request.
  auto it = free_.lower_bound(size);
  if (it != free_.end() && it->first <= 2 * size) {
    ptr = it->second;
    got = it->first;
    free_.erase(it);
  } else if (MakeRoom(size)) {
    // Pinning can take milliseconds; it happens only while the pool grows
    // (the first iterations), and the lock keeps the bound exact.
    ptr = source_.alloc(size);
    if (ptr != nullptr) {
      got = size;
      stats_.reserved_bytes += static_cast<int64_t>(size);
      ++stats_.system_allocations;
    }
  }
  if (ptr == nullptr) {
    ++stats_.fallback_allocations;
    stats_.fallback_bytes += static_cast<int64_t>(bytes);
    return nullptr;
  }
  in_use_.emplace(ptr, got);
  ++stats_.allocations;
  stats_.in_use_bytes += static_cast<int64_t>(got);
  stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  return ptr;
}

void PinnedPool::Free(void* ptr) {
  if (ptr == nullptr) return;
  absl::MutexLock l(&mu_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end()) {
    // A block from elsewhere would corrupt the accounting and the bound.
    std::fprintf(stderr, "PinnedPool::Free of a block it did not hand out\n");
    std::abort();
  }
  stats_.in_use_bytes -= static_cast<int64_t>(it->second);
  free_.emplace(it->second, ptr);
  in_use_.erase(it);
}

void PinnedPool::Trim() {
  absl::MutexLock l(&mu_);
  for (auto& [size, ptr] : free_) {
    source_.free(ptr);
    stats_.reserved_bytes -= static_cast<int64_t>(size);
  }
  free_.clear();
}

void PinnedPool::ResetPeak() {
  absl::MutexLock l(&mu_);
  stats_.peak_in_use_bytes = stats_.in_use_bytes;
}

PinnedPoolStats PinnedPool::Stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

}  // namespace chronos::worker
