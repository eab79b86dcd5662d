// What a stage needs from its device beyond tensors: a thread binding (the
// device and its compute stream), the host copier for offloads, the pinned
// host pool, and the allocator's memory figures. A CPU stage has none
// (nullptr everywhere it is taken); the CUDA build's is
// worker/cuda/cuda_runtime.h. Torch-light on purpose: no CUDA headers.
#ifndef CHRONOS_WORKER_DEVICE_RUNTIME_H_
#define CHRONOS_WORKER_DEVICE_RUNTIME_H_

#include <cstdint>
#include <memory>

#include "worker/host_copier.h"
#include "worker/pinned_pool.h"

namespace chronos::worker {

// The device allocator's figures (bytes), as CUDA's caching allocator and
// cudaMemGetInfo report them.
struct DeviceMemoryStats {
  int64_t allocated_bytes = 0;       // in live tensors now
  int64_t reserved_bytes = 0;        // held by the caching allocator now
  int64_t peak_allocated_bytes = 0;  // since the last ResetPeaks
  int64_t free_bytes = 0;            // cudaMemGetInfo: free on the device
  int64_t total_bytes = 0;           // cudaMemGetInfo: the device's HBM
};

class DeviceRuntime {
 public:
  virtual ~DeviceRuntime() = default;
  // Binds the calling thread to the device and its compute stream until the
  // returned object is destroyed. Every thread that computes enters first.
  virtual std::shared_ptr<void> Enter() = 0;
  virtual std::shared_ptr<HostCopier> copier() = 0;
  virtual std::shared_ptr<PinnedPool> pinned_pool() = 0;
  virtual DeviceMemoryStats MemoryStats() = 0;
  virtual void ResetPeaks() = 0;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DEVICE_RUNTIME_H_
