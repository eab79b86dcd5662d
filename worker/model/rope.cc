#include "worker/model/rope.h"

#include <ATen/ATen.h>

namespace chronos::worker {
namespace {

// (a, b) -> (-b, a) over the last dimension.
at::Tensor RotateHalf(const at::Tensor& t) {
  const int64_t half = t.size(-1) / 2;
  return at::cat({t.slice(-1, half).neg(), t.slice(-1, 0, half)}, -1);
}

}  // namespace

Rope::Rope(int64_t seq_len, int64_t head_dim, double theta, c10::Device device) {
  TORCH_CHECK(head_dim % 2 == 0, "rope needs an even head_dim, got ", head_dim);
  auto f64 = at::TensorOptions().dtype(at::kDouble);
  // Angles in fp64, then rounded once: the table does not depend on how a
  // device computes pow/cos in fp32.
  at::Tensor inv_freq = at::pow(theta, at::arange(0, head_dim, 2, f64).div(head_dim)).reciprocal();
  at::Tensor angles = at::outer(at::arange(seq_len, f64), inv_freq);
  angles = at::cat({angles, angles}, -1);
  cos_ = angles.cos().to(device, at::kFloat);
  sin_ = angles.sin().to(device, at::kFloat);
}

at::Tensor Rope::Apply(const at::Tensor& t) const {
  at::Tensor t32 = t.to(at::kFloat);
  return t32.mul(cos_).add(RotateHalf(t32).mul(sin_)).to(t.scalar_type());
}

at::Tensor Rope::Backward(const at::Tensor& dt) const {
  // Apply is t*C + R(t)*S with R^T = -R, so its transpose is d*C - R(d*S).
  at::Tensor d32 = dt.to(at::kFloat);
  return d32.mul(cos_).sub(RotateHalf(d32.mul(sin_))).to(dt.scalar_type());
}

}  // namespace chronos::worker
