// The token embedding x = wte[ids] and the accumulation of its gradient.
// Pure functions; no autograd.
#ifndef CHRONOS_WORKER_MODEL_EMBEDDING_H_
#define CHRONOS_WORKER_MODEL_EMBEDDING_H_

#include <ATen/core/Tensor.h>

namespace chronos::worker {

// ids: int64 [b, s]; returns [b, s, h] in wte's dtype.
at::Tensor EmbeddingForward(const at::Tensor& wte, const at::Tensor& ids);

// grad[ids[i]] += demb[i] (fp32), without materializing a dense [V, h] delta.
void AccumulateEmbeddingGrad(const at::Tensor& ids, const at::Tensor& demb, at::Tensor* grad);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_EMBEDDING_H_
