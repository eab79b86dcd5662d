// RMSNorm without bias, y = x * rstd * g with rstd = 1 / sqrt(mean(x^2) + eps),
// split into the pieces the explicit forward and backward need. Statistics and
// the arithmetic are fp32 whatever the activation dtype, so a bf16 model
// normalizes as accurately as an fp32 one. Pure functions.
#ifndef CHRONOS_WORKER_MODEL_RMSNORM_H_
#define CHRONOS_WORKER_MODEL_RMSNORM_H_

#include <ATen/core/Tensor.h>

namespace chronos::worker {

// rstd over the last dimension, fp32, shaped [..., 1].
at::Tensor RmsNormRstd(const at::Tensor& x, double eps);

// x * rstd * g in fp32, returned in x's dtype. Forward, recompute and the
// backward's rebuild of the normalized input all call this, so they agree
// bit for bit.
at::Tensor RmsNormApply(const at::Tensor& x, const at::Tensor& rstd, const at::Tensor& g);

struct RmsNormGrads {
  at::Tensor dx;  // fp32, x's shape
  at::Tensor dg;  // fp32 [h], summed over all tokens
};

// Gradients given dy = dL/dy (any float dtype).
RmsNormGrads RmsNormBackward(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& rstd,
                             const at::Tensor& g);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_RMSNORM_H_
