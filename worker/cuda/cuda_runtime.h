// The GPU runtime of one stage (CUDA build only):
//  - streams: the compute stream (the executor thread's current stream once
//    it has entered), a device-to-host stream and a host-to-device stream
//    from c10's stream pool; stage-to-stage transfers run on NCCL's own
//    per-peer streams (worker/cuda/nccl_communicator.h). Streams are ordered
//    by CUDA events only; nothing synchronizes the device in the steady
//    state.
//  - the host copier: OFFLOAD records an event on the compute stream, the
//    device-to-host stream waits for it and copies into a pinned block of
//    the pool, then records the copy's event; RELOAD does the same the other
//    way on the host-to-device stream. The consumer's compute stream waits
//    on the reload's event (CopyEvent::OrderCompute), not the host.
//  - the pinned pool (cudaHostAlloc) for offloaded activations and offloaded
//    optimizer state, bounded by `pinned_pool_bytes`.
//  - memory figures from the caching allocator and cudaMemGetInfo.
#ifndef CHRONOS_WORKER_CUDA_CUDA_RUNTIME_H_
#define CHRONOS_WORKER_CUDA_CUDA_RUNTIME_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/device_runtime.h"

namespace chronos::worker {

struct CudaRuntimeOptions {
  int device = 0;  // CUDA device index
  // Upper bound on pinned host memory for this stage.
  int64_t pinned_pool_bytes = int64_t{64} << 30;
};

// kFailedPrecondition when the device does not exist (or CUDA has none).
absl::StatusOr<std::shared_ptr<DeviceRuntime>> NewCudaRuntime(const CudaRuntimeOptions& options);

// How many CUDA devices this process sees (0 without a GPU or driver).
int CudaDeviceCount();

// The device's name and HBM (cudaMemGetInfo's total);
// kFailedPrecondition when it does not exist.
struct CudaDeviceInfo {
  std::string name;
  int64_t memory_bytes = 0;
  // "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi and DCGM
  // exporter's UUID label spell it.
  std::string uuid;
};
absl::StatusOr<CudaDeviceInfo> DescribeCudaDevice(int index);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_CUDA_CUDA_RUNTIME_H_
