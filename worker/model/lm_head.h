// The math of the model's head: final RMSNorm, LM head and mean cross-entropy,
// with the explicit backward. The loss and the softmax it saves (probs_v) are
// fp32 whatever the compute dtype. Like TransformerLayer, the forward fills
// in what is missing so that recompute is bit-identical. Immutable; no
// autograd.
#ifndef CHRONOS_WORKER_MODEL_LM_HEAD_H_
#define CHRONOS_WORKER_MODEL_LM_HEAD_H_

#include <ATen/core/Tensor.h>

#include <string>

namespace chronos::worker {

// What the head's forward saves (core ForwardStash(kHead) names).
struct HeadSaved {
  at::Tensor xf;       // [b, s, h] input
  at::Tensor rstdf;    // [b, s, 1] fp32
  at::Tensor probs_v;  // [b*s, V] fp32 softmax of the logits
  at::Tensor targets;  // [b, s] int64

  at::Tensor* Field(const std::string& name);
};

// Held from BI to BW (core WeightGradStash(kHead) names).
struct HeadWGradInputs {
  at::Tensor xnf;      // [b, s, h]
  at::Tensor dlogits;  // [b*s, V] compute dtype

  at::Tensor* Field(const std::string& name);
};

class LmHead {
 public:
  explicit LmHead(double norm_eps) : eps_(norm_eps) {}

  // Fills the missing rstdf and probs_v from xf (and targets); returns the
  // mean cross-entropy over the b*s tokens (0-dim fp32) when it computed
  // probs_v, else an undefined tensor.
  at::Tensor Rebuild(const at::Tensor& gf, const at::Tensor& w, HeadSaved* s) const;

  // Starts the backward from dlogits = (probs_v - onehot(targets)) *
  // loss_scale; returns the gradient of xf (xf's dtype) and fills *wg and
  // the fp32 gradient of the final norm's gain *dgf.
  at::Tensor BackwardInput(const at::Tensor& gf, const at::Tensor& w, const HeadSaved& s,
                           double loss_scale, HeadWGradInputs* wg, at::Tensor* dgf) const;
  // Gradient of the LM head weight [V, h] in the compute dtype.
  at::Tensor BackwardWeight(const HeadWGradInputs& wg) const;

 private:
  double eps_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_LM_HEAD_H_
