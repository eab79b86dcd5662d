#include "worker/model/transformer_layer.h"

#include <ATen/ATen.h>

#include <utility>

#include "worker/model/named_fields.h"
#include "worker/model/rmsnorm.h"

namespace chronos::worker {
namespace {

at::Tensor Linear(const at::Tensor& x, const at::Tensor& w) { return at::matmul(x, w.t()); }

// [b, s, heads * hd] -> [b, heads, s, hd] (a view).
at::Tensor SplitHeads(const at::Tensor& t, int64_t heads) {
  return t.reshape({t.size(0), t.size(1), heads, -1}).transpose(1, 2);
}

// [b, heads, s, hd] -> [b, s, heads * hd] (a copy).
at::Tensor MergeHeads(const at::Tensor& t) {
  return t.transpose(1, 2).reshape({t.size(0), t.size(2), -1});
}

// silu(gate) * up, in fp32, returned in gate's dtype.
at::Tensor SwiGlu(const at::Tensor& gate, const at::Tensor& up) {
  return at::silu(gate.to(at::kFloat)).mul(up.to(at::kFloat)).to(gate.scalar_type());
}

void SwiGluBackward(const at::Tensor& gate, const at::Tensor& up, const at::Tensor& dact,
                    at::Tensor* dgate, at::Tensor* dup) {
  at::Tensor g32 = gate.to(at::kFloat);
  at::Tensor d32 = dact.to(at::kFloat);
  at::Tensor sig = at::sigmoid(g32);
  *dup = d32.mul(g32.mul(sig)).to(gate.scalar_type());
  // silu'(g) = sig * (1 + g * (1 - sig)).
  at::Tensor dsilu = sig.mul(g32.mul(sig.neg().add(1)).add(1));
  *dgate = d32.mul(up.to(at::kFloat)).mul(dsilu).to(gate.scalar_type());
}

}  // namespace

at::Tensor* LayerSaved::Field(const std::string& name) {
  return FindField<LayerSaved>(this,
                               {{"x", &LayerSaved::x},
                                {"rstd1", &LayerSaved::rstd1},
                                {"q", &LayerSaved::q},
                                {"k", &LayerSaved::k},
                                {"v", &LayerSaved::v},
                                {"probs", &LayerSaved::probs},
                                {"lse", &LayerSaved::lse},
                                {"attn", &LayerSaved::attn},
                                {"x2", &LayerSaved::x2},
                                {"rstd2", &LayerSaved::rstd2},
                                {"gate", &LayerSaved::gate},
                                {"up", &LayerSaved::up}},
                               name);
}

at::Tensor* LayerWGradInputs::Field(const std::string& name) {
  return FindField<LayerWGradInputs>(this,
                                     {{"xn1", &LayerWGradInputs::xn1},
                                      {"dqkv", &LayerWGradInputs::dqkv},
                                      {"attn", &LayerWGradInputs::attn},
                                      {"do", &LayerWGradInputs::dproj},
                                      {"xn2", &LayerWGradInputs::xn2},
                                      {"dgate", &LayerWGradInputs::dgate},
                                      {"dup", &LayerWGradInputs::dup},
                                      {"act", &LayerWGradInputs::act},
                                      {"dmlp", &LayerWGradInputs::dmlp}},
                                     name);
}

at::Tensor LinearWeightGrad(const at::Tensor& dy, const at::Tensor& x) {
  return at::mm(dy.reshape({-1, dy.size(-1)}).t(), x.reshape({-1, x.size(-1)}));
}

TransformerLayer::TransformerLayer(const ModelDims& dims, c10::Device device)
    : dims_(dims),
      rope_(dims.seq_len, dims.head_dim(), dims.rope_theta, device),
      attention_(dims.seq_len, dims.head_dim(), device) {
  TORCH_CHECK(dims.heads > 0 && dims.hidden % dims.heads == 0, "hidden ", dims.hidden,
              " is not a multiple of heads ", dims.heads);
}

void TransformerLayer::Rebuild(const LayerWeights& w, LayerSaved* s) const {
  TORCH_CHECK(s->x.defined(),
              "layer rebuild needs the layer input x (chunk-granularity "
              "recompute needs RECOMPUTE before B)");
  const int64_t h = dims_.hidden;
  if (!s->rstd1.defined()) s->rstd1 = RmsNormRstd(s->x, dims_.norm_eps);
  const bool have_core = s->q.defined() && s->k.defined() && s->v.defined() &&
                         (dims_.flash ? s->lse.defined() : s->probs.defined());
  const bool fused = dims_.flash && CausalAttention::HasFusedFlash(s->x);
  at::Tensor probs32;
  at::Tensor fused_out;
  if (!have_core) {
    at::Tensor qkv = Linear(RmsNormApply(s->x, s->rstd1, w.g1), w.wqkv);
    s->q = rope_.Apply(SplitHeads(qkv.slice(-1, 0, h), dims_.heads));
    s->k = rope_.Apply(SplitHeads(qkv.slice(-1, h, 2 * h), dims_.heads));
    // contiguous() copies, so v does not keep all of qkv alive in the stash.
    s->v = SplitHeads(qkv.slice(-1, 2 * h), dims_.heads).contiguous();
    if (fused) {
      s->probs = at::Tensor();
      fused_out = attention_.FusedFlash(s->q, s->k, s->v, &s->lse);
    } else {
      probs32 = attention_.Probs(s->q, s->k, dims_.flash, &s->probs, &s->lse);
    }
  }
  if (!s->attn.defined()) {
    if (fused) {
      if (!fused_out.defined()) {
        // The kernel is deterministic: the same output, and the same lse,
        // as the forward that saved q, k, v and lse.
        at::Tensor lse;
        fused_out = attention_.FusedFlash(s->q, s->k, s->v, &lse);
      }
      s->attn = fused_out;
    } else {
      if (!probs32.defined()) {
        probs32 = attention_.SavedProbs(s->q, s->k, s->probs, s->lse);
      }
      s->attn = attention_.Output(probs32, s->v);
    }
  }
  if (!s->x2.defined()) s->x2 = s->x.add(Linear(s->attn, w.wo));
  if (!s->rstd2.defined()) s->rstd2 = RmsNormRstd(s->x2, dims_.norm_eps);
  if (!s->gate.defined() || !s->up.defined()) {
    at::Tensor xn2 = RmsNormApply(s->x2, s->rstd2, w.g2);
    s->gate = Linear(xn2, w.w_gate);
    s->up = Linear(xn2, w.w_up);
  }
}

at::Tensor TransformerLayer::Output(const LayerWeights& w, const LayerSaved& s) const {
  return s.x2.add(Linear(SwiGlu(s.gate, s.up), w.w_down));
}

at::Tensor TransformerLayer::BackwardInput(const LayerWeights& w, const LayerSaved& s,
                                           const at::Tensor& dout, LayerWGradInputs* wg,
                                           at::Tensor* dg1, at::Tensor* dg2) const {
  const at::ScalarType dtype = s.x.scalar_type();
  // MLP block: out = x2 + act @ w_down^T.
  wg->dmlp = dout.to(dtype);
  wg->xn2 = RmsNormApply(s.x2, s.rstd2, w.g2);
  wg->act = SwiGlu(s.gate, s.up);
  SwiGluBackward(s.gate, s.up, at::matmul(wg->dmlp, w.w_down), &wg->dgate, &wg->dup);
  at::Tensor dxn2 = at::matmul(wg->dgate, w.w_gate).add(at::matmul(wg->dup, w.w_up));
  RmsNormGrads n2 = RmsNormBackward(dxn2, s.x2, s.rstd2, w.g2);
  // The residual stream's gradient stays fp32 inside the layer.
  at::Tensor dx2 = n2.dx.add(dout.to(at::kFloat));

  // Attention block: x2 = x + attn @ wo^T.
  wg->dproj = dx2.to(dtype);
  wg->attn = s.attn;
  const at::Tensor dattn = at::matmul(wg->dproj, w.wo);
  CausalAttention::Grads ag;
  if (dims_.flash && CausalAttention::HasFusedFlash(s.x)) {
    ag = attention_.FusedFlashBackward(s.q, s.k, s.v, s.attn, s.lse, dattn);
  } else {
    at::Tensor probs32 = attention_.SavedProbs(s.q, s.k, s.probs, s.lse);
    ag = attention_.Backward(s.q, s.k, s.v, probs32, dattn);
  }
  wg->dqkv = at::cat(
      {MergeHeads(rope_.Backward(ag.dq)), MergeHeads(rope_.Backward(ag.dk)), MergeHeads(ag.dv)},
      -1);
  wg->xn1 = RmsNormApply(s.x, s.rstd1, w.g1);
  RmsNormGrads n1 = RmsNormBackward(at::matmul(wg->dqkv, w.wqkv), s.x, s.rstd1, w.g1);
  *dg1 = n1.dg;
  *dg2 = n2.dg;
  return n1.dx.add(dx2).to(dtype);
}

LayerWeightGrads TransformerLayer::BackwardWeight(const LayerWGradInputs& wg) const {
  LayerWeightGrads g;
  g.wqkv = LinearWeightGrad(wg.dqkv, wg.xn1);
  g.wo = LinearWeightGrad(wg.dproj, wg.attn);
  g.w_gate = LinearWeightGrad(wg.dgate, wg.xn2);
  g.w_up = LinearWeightGrad(wg.dup, wg.xn2);
  g.w_down = LinearWeightGrad(wg.dmlp, wg.act);
  return g;
}

}  // namespace chronos::worker
