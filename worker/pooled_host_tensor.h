// Host tensors backed by a PinnedPool block: the tensor's deleter returns
// the block to the pool (and keeps the pool alive until it has), so pinned
// memory is reused across iterations instead of pinned and unpinned each
// time. When the pool refuses (its limit), the tensor is ordinary pageable
// memory and the pool counts the fallback.
#ifndef CHRONOS_WORKER_POOLED_HOST_TENSOR_H_
#define CHRONOS_WORKER_POOLED_HOST_TENSOR_H_

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>

#include "worker/pinned_pool.h"

namespace chronos::worker {

// An uninitialised contiguous CPU tensor of `sizes` and `dtype`; from `pool`
// when it has room, else pageable. `pool` may be null (always pageable).
at::Tensor EmptyPooledHostTensor(const std::shared_ptr<PinnedPool>& pool, at::IntArrayRef sizes,
                                 at::ScalarType dtype);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_POOLED_HOST_TENSOR_H_
