// Rotary position embedding, rotate-half convention: for a head vector split
// into halves (a, b), rope(t) = t * cos + (-b, a) * sin with angles
// pos * theta^(-2i/head_dim), positions 0..seq_len-1. Tables are fp32 and
// built once per chunk; the rotation is computed in fp32 and returned in the
// input's dtype. Immutable after construction.
#ifndef CHRONOS_WORKER_MODEL_ROPE_H_
#define CHRONOS_WORKER_MODEL_ROPE_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

namespace chronos::worker {

class Rope {
 public:
  Rope(int64_t seq_len, int64_t head_dim, double theta, c10::Device device);

  // t: [b, heads, s, head_dim].
  at::Tensor Apply(const at::Tensor& t) const;
  // The transpose of Apply: the gradient w.r.t. Apply's input given the
  // gradient w.r.t. its output (the rotation is orthogonal).
  at::Tensor Backward(const at::Tensor& dt) const;

 private:
  at::Tensor cos_;  // fp32 [s, head_dim]
  at::Tensor sin_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_ROPE_H_
