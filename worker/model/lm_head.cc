#include "worker/model/lm_head.h"

#include <ATen/ATen.h>

#include "worker/model/named_fields.h"
#include "worker/model/rmsnorm.h"
#include "worker/model/transformer_layer.h"

namespace chronos::worker {

at::Tensor* HeadSaved::Field(const std::string& name) {
  return FindField<HeadSaved>(this,
                              {{"xf", &HeadSaved::xf},
                               {"rstdf", &HeadSaved::rstdf},
                               {"probs_v", &HeadSaved::probs_v},
                               {"targets", &HeadSaved::targets}},
                              name);
}

at::Tensor* HeadWGradInputs::Field(const std::string& name) {
  return FindField<HeadWGradInputs>(
      this, {{"xnf", &HeadWGradInputs::xnf}, {"dlogits", &HeadWGradInputs::dlogits}}, name);
}

at::Tensor LmHead::Rebuild(const at::Tensor& gf, const at::Tensor& w, HeadSaved* s) const {
  TORCH_CHECK(s->xf.defined(),
              "head rebuild needs its input xf (chunk-granularity recompute "
              "needs RECOMPUTE before B)");
  TORCH_CHECK(s->targets.defined(), "head needs targets");
  if (!s->rstdf.defined()) s->rstdf = RmsNormRstd(s->xf, eps_);
  if (s->probs_v.defined()) return at::Tensor();
  at::Tensor logits = at::matmul(RmsNormApply(s->xf, s->rstdf, gf), w.t());
  at::Tensor logp = at::log_softmax(logits.reshape({-1, w.size(0)}).to(at::kFloat), -1);
  s->probs_v = logp.exp();
  return logp.gather(1, s->targets.reshape({-1, 1})).mean().neg();
}

at::Tensor LmHead::BackwardInput(const at::Tensor& gf, const at::Tensor& w, const HeadSaved& s,
                                 double loss_scale, HeadWGradInputs* wg, at::Tensor* dgf) const {
  at::Tensor idx = s.targets.reshape({-1, 1});
  at::Tensor dl =
      s.probs_v.scatter_add(1, idx, at::full({idx.size(0), 1}, -1.0, s.probs_v.options()));
  wg->dlogits = dl.mul(loss_scale).to(s.xf.scalar_type());
  wg->xnf = RmsNormApply(s.xf, s.rstdf, gf);
  RmsNormGrads n =
      RmsNormBackward(at::matmul(wg->dlogits, w).reshape(s.xf.sizes()), s.xf, s.rstdf, gf);
  *dgf = n.dg;
  return n.dx.to(s.xf.scalar_type());
}

at::Tensor LmHead::BackwardWeight(const HeadWGradInputs& wg) const {
  return LinearWeightGrad(wg.dlogits, wg.xnf);
}

}  // namespace chronos::worker
