#include "worker/pooled_host_tensor.h"

#include <ATen/ATen.h>

#include <utility>

namespace chronos::worker {

at::Tensor EmptyPooledHostTensor(const std::shared_ptr<PinnedPool>& pool, at::IntArrayRef sizes,
                                 at::ScalarType dtype) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(dtype);
  void* ptr = pool != nullptr && bytes > 0 ? pool->Allocate(bytes) : nullptr;
  if (ptr == nullptr) return at::empty(sizes, at::TensorOptions().dtype(dtype));
  std::shared_ptr<PinnedPool> keep = pool;
  return at::from_blob(
      ptr, sizes, [keep = std::move(keep)](void* p) { keep->Free(p); },
      at::TensorOptions().dtype(dtype).device(at::kCPU));
}

}  // namespace chronos::worker
