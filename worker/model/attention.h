// Causal softmax attention over rotated q, k and v shaped [b, heads, s, hd],
// scale 1/sqrt(hd). Two ways to save for the backward:
//  - standard: the probability matrix [b, heads, s, s] in the compute dtype,
//    written out so that the backward rebuilds exactly the probabilities the
//    forward used (scores, softmax and its backward in fp32; the products
//    with v in the compute dtype);
//  - flash: only the row log-sum-exp [b, heads, s] fp32 (and the output,
//    which the layer saves anyway). Where ATen has a fused flash kernel for
//    the device and dtype (CPU: any float type; CUDA: bf16 and fp16), the
//    forward and backward are at::_scaled_dot_product_flash_attention* (what
//    at::scaled_dot_product_attention dispatches to), which never forms the
//    [s, s] matrix; elsewhere (fp32 on CUDA) the backward recomputes the
//    scores and takes exp(scores - lse).
// Immutable after construction.
#ifndef CHRONOS_WORKER_MODEL_ATTENTION_H_
#define CHRONOS_WORKER_MODEL_ATTENTION_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

namespace chronos::worker {

class CausalAttention {
 public:
  CausalAttention(int64_t seq_len, int64_t head_dim, c10::Device device);

  // Forward probabilities, fp32. Sets exactly one of *probs (standard: the
  // matrix in q's dtype) and *lse (flash) to what must be saved.
  at::Tensor Probs(const at::Tensor& q, const at::Tensor& k, bool flash, at::Tensor* probs,
                   at::Tensor* lse) const;
  // The fp32 probabilities the forward used, from what it saved (`probs`
  // when defined, else q, k and `lse`).
  at::Tensor SavedProbs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& probs,
                        const at::Tensor& lse) const;
  // probs @ v with heads merged: [b, s, heads * hd] in v's dtype.
  at::Tensor Output(const at::Tensor& probs32, const at::Tensor& v) const;

  struct Grads {
    at::Tensor dq, dk, dv;  // [b, heads, s, hd], w.r.t. the rotated q and k
  };
  // `dattn`: gradient of Output's result, [b, s, heads * hd].
  Grads Backward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                 const at::Tensor& probs32, const at::Tensor& dattn) const;

  // Whether the fused flash kernels serve tensors like `q`.
  static bool HasFusedFlash(const at::Tensor& q);
  // Fused flash forward: the output with heads merged, [b, s, heads * hd],
  // and the log-sum-exp in *lse ([b, heads, s], fp32).
  at::Tensor FusedFlash(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        at::Tensor* lse) const;
  // Its backward from the saved output (`attn`, heads merged) and lse.
  Grads FusedFlashBackward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& attn, const at::Tensor& lse,
                           const at::Tensor& dattn) const;

 private:
  // Scaled, causally masked q @ k^T in fp32.
  at::Tensor Scores(const at::Tensor& q, const at::Tensor& k) const;

  at::Tensor future_;  // bool [s, s], true above the diagonal
  double scale_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_ATTENTION_H_
