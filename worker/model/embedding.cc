#include "worker/model/embedding.h"

#include <ATen/ATen.h>

namespace chronos::worker {

at::Tensor EmbeddingForward(const at::Tensor& wte, const at::Tensor& ids) {
  TORCH_CHECK(ids.scalar_type() == at::kLong && ids.dim() == 2,
              "embedding input must be int64 [b, s]");
  return wte.index_select(0, ids.reshape({-1})).reshape({ids.size(0), ids.size(1), wte.size(1)});
}

void AccumulateEmbeddingGrad(const at::Tensor& ids, const at::Tensor& demb, at::Tensor* grad) {
  grad->index_add_(0, ids.reshape({-1}), demb.reshape({-1, grad->size(1)}).to(at::kFloat));
}

}  // namespace chronos::worker
