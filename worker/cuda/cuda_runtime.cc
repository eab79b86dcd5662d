#include "worker/cuda/cuda_runtime.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "worker/gpu_uuid.h"
#include "worker/pooled_host_tensor.h"

namespace chronos::worker {
namespace {

using c10::cuda::CUDAEvent;
using c10::cuda::CUDAStream;

// One copy's completion, recorded on its copy stream.
class CudaCopyEvent : public CopyEvent {
 public:
  CudaCopyEvent(CUDAEvent event, at::Tensor device_dst)
      : event_(std::move(event)), device_dst_(std::move(device_dst)) {}

  bool Done() override { return event_.query(); }

  void OrderCompute() override {
    const CUDAStream compute = c10::cuda::getCurrentCUDAStream();
    event_.block(compute);
    // A reload's destination was allocated on the host-to-device stream and
    // is now used on the compute stream: the caching allocator must not hand
    // its block out again before the compute stream is done with it.
    if (device_dst_.defined()) {
      device_dst_.record_stream(compute);
      device_dst_ = at::Tensor();
    }
  }

  void Synchronize() override { event_.synchronize(); }

 private:
  CUDAEvent event_;
  at::Tensor device_dst_;  // reloads only, until OrderCompute
};

class CudaHostCopier : public HostCopier {
 public:
  CudaHostCopier(int device, std::shared_ptr<PinnedPool> pool)
      : to_host_(c10::cuda::getStreamFromPool(false, device)),
        to_device_(c10::cuda::getStreamFromPool(false, device)),
        pool_(std::move(pool)) {}

  PendingCopy StartToHost(const at::Tensor& src) override {
    if (!src.is_cuda()) return sync_.StartToHost(src);
    // The copy stream waits for the compute that produced `src`.
    CUDAEvent produced;
    produced.record(c10::cuda::getCurrentCUDAStream());
    produced.block(to_host_);
    at::Tensor dst = EmptyPooledHostTensor(pool_, src.sizes(), src.scalar_type());
    CUDAEvent done;
    {
      c10::cuda::CUDAStreamGuard guard(to_host_);
      // Asynchronous only into pinned memory; a pageable fallback copies
      // synchronously (and the pool counts it).
      dst.copy_(src, /*non_blocking=*/true);
      done.record(to_host_);
    }
    return {dst, std::make_unique<CudaCopyEvent>(std::move(done), at::Tensor())};
  }

  PendingCopy StartToDevice(const at::Tensor& host, c10::Device device) override {
    if (!device.is_cuda()) return sync_.StartToDevice(host, device);
    at::Tensor dst;
    CUDAEvent done;
    {
      c10::cuda::CUDAStreamGuard guard(to_device_);
      dst = at::empty(host.sizes(), host.options().device(device));
      dst.copy_(host, /*non_blocking=*/true);
      done.record(to_device_);
    }
    return {dst, std::make_unique<CudaCopyEvent>(std::move(done), dst)};
  }

 private:
  CUDAStream to_host_;
  CUDAStream to_device_;
  std::shared_ptr<PinnedPool> pool_;
  SyncHostCopier sync_;
};

HostMemorySource PinnedHostMemory() {
  HostMemorySource s;
  s.alloc = [](size_t bytes) -> void* {
    void* p = nullptr;
    if (cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state
      return nullptr;
    }
    return p;
  };
  s.free = [](void* p) { cudaFreeHost(p); };
  s.pinned = true;
  return s;
}

class CudaRuntime : public DeviceRuntime {
 public:
  explicit CudaRuntime(const CudaRuntimeOptions& o)
      : device_(static_cast<c10::DeviceIndex>(o.device)),
        compute_(c10::cuda::getStreamFromPool(false, device_)),
        pool_(std::make_shared<PinnedPool>(PinnedHostMemory(), o.pinned_pool_bytes)),
        copier_(std::make_shared<CudaHostCopier>(device_, pool_)) {}

  std::shared_ptr<void> Enter() override {
    struct Scope {
      explicit Scope(c10::DeviceIndex d, CUDAStream s) : device(d), stream(s) {}
      c10::cuda::CUDAGuard device;
      c10::cuda::CUDAStreamGuard stream;
    };
    return std::make_shared<Scope>(device_, compute_);
  }

  std::shared_ptr<HostCopier> copier() override { return copier_; }
  std::shared_ptr<PinnedPool> pinned_pool() override { return pool_; }

  DeviceMemoryStats MemoryStats() override {
    DeviceMemoryStats m;
    const auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(device_);
    constexpr size_t kAll = 0;  // StatType::AGGREGATE
    m.allocated_bytes = st.allocated_bytes[kAll].current;
    m.reserved_bytes = st.reserved_bytes[kAll].current;
    m.peak_allocated_bytes = st.allocated_bytes[kAll].peak;
    c10::cuda::CUDAGuard guard(device_);
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) == cudaSuccess) {
      m.free_bytes = static_cast<int64_t>(free);
      m.total_bytes = static_cast<int64_t>(total);
    }
    return m;
  }

  void ResetPeaks() override {
    c10::cuda::CUDACachingAllocator::resetPeakStats(device_);
    pool_->ResetPeak();
  }

 private:
  c10::DeviceIndex device_;
  CUDAStream compute_;
  std::shared_ptr<PinnedPool> pool_;
  std::shared_ptr<CudaHostCopier> copier_;
};

}  // namespace

int CudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

absl::StatusOr<CudaDeviceInfo> DescribeCudaDevice(int index) {
  const int n = CudaDeviceCount();
  if (index < 0 || index >= n) {
    return absl::FailedPreconditionError(absl::StrCat("--device cuda:", index,
                                                      ": this machine has ", n,
                                                      " CUDA device(s) visible to this process"));
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(
        absl::StrCat("--device cuda:", index, ": cannot read its properties"));
  }
  CudaDeviceInfo info;
  info.name = prop.name;
  info.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  unsigned char uuid[16];
  std::memcpy(uuid, prop.uuid.bytes, sizeof(uuid));
  info.uuid = GpuUuidString(uuid);
  return info;
}

absl::StatusOr<std::shared_ptr<DeviceRuntime>> NewCudaRuntime(const CudaRuntimeOptions& options) {
  absl::StatusOr<CudaDeviceInfo> info = DescribeCudaDevice(options.device);
  if (!info.ok()) return info.status();
  try {
    return std::shared_ptr<DeviceRuntime>(std::make_shared<CudaRuntime>(options));
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda:", options.device, ": starting the GPU runtime: ", e.what()));
  }
}

}  // namespace chronos::worker
