// A bounded, reusable pool of host memory for what leaves the GPU:
// offloaded activations and host-resident optimizer state. On a GPU the
// memory is pinned (page-locked, cudaHostAlloc), which is what lets a
// device-to-host copy run asynchronously at the link's full rate; pinning is
// slow (milliseconds per call) and pinned memory is a scarce host resource,
// so blocks are kept and reused across iterations instead of freed, and the
// pool never holds more than its limit.
//
// Blocks are rounded up to a granule and reused best-fit (the smallest
// cached block that is large enough, at most twice the request, so a small
// request does not pin a huge block). When a new block would push the pool
// past its limit, cached free blocks are released first; if that is not
// enough, Allocate returns nullptr and the caller falls back to ordinary
// (pageable) memory, which the pool counts.
//
// Torch-free: the memory source is injected, so the pool's logic is tested
// on machines without a GPU. Thread-safe (the executor allocates, tensor
// deleters on any thread free, the metrics thread reads).
#ifndef CHRONOS_WORKER_PINNED_POOL_H_
#define CHRONOS_WORKER_PINNED_POOL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace chronos::worker {

// Where the pool's blocks come from: cudaHostAlloc/cudaFreeHost on a GPU,
// malloc/free elsewhere. `alloc` returns nullptr when the system refuses.
struct HostMemorySource {
  std::function<void*(size_t bytes)> alloc;
  std::function<void(void* ptr)> free;
  bool pinned = false;  // what the blocks are, for metrics and docs
};

// The ordinary-memory source (aligned malloc); not pinned.
HostMemorySource PageableHostMemory();

struct PinnedPoolStats {
  int64_t limit_bytes = 0;           // the bound on reserved_bytes
  int64_t reserved_bytes = 0;        // held from the system (free + in use)
  int64_t in_use_bytes = 0;          // handed out and not yet returned
  int64_t peak_in_use_bytes = 0;     // since the last ResetPeak
  int64_t allocations = 0;           // blocks handed out, since construction
  int64_t system_allocations = 0;    // blocks taken from the system
  int64_t fallback_allocations = 0;  // requests refused (limit or system)
  int64_t fallback_bytes = 0;
};

class PinnedPool {
 public:
  static constexpr size_t kGranule = size_t{2} << 20;  // 2 MiB

  PinnedPool(HostMemorySource source, int64_t limit_bytes);
  // Releases every cached block. Owners share the pool (std::shared_ptr)
  // with the deleters of the tensors it backs, so none is in use by then.
  ~PinnedPool();
  PinnedPool(const PinnedPool&) = delete;
  PinnedPool& operator=(const PinnedPool&) = delete;

  // A block of at least `bytes`, or nullptr when the limit (or the system)
  // refuses it; then the caller uses ordinary memory. Thread-safe.
  void* Allocate(size_t bytes);
  // Returns a block from Allocate. Thread-safe.
  void Free(void* ptr);
  // Releases the cached free blocks to the system.
  void Trim();
  void ResetPeak();
  PinnedPoolStats Stats() const;
  bool pinned() const { return source_.pinned; }

  static size_t RoundUp(size_t bytes);

 private:
  // Releases free blocks, largest first, until `needed` more bytes fit
  // under the limit; true when they do.
  bool MakeRoom(size_t needed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const HostMemorySource source_;
  mutable absl::Mutex mu_;
  std::multimap<size_t, void*> free_ ABSL_GUARDED_BY(mu_);  // size -> block
  std::map<void*, size_t> in_use_ ABSL_GUARDED_BY(mu_);     // block -> size
  PinnedPoolStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_PINNED_POOL_H_
