#include "tests/worker/reference_gpt.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>

#include "worker/model/chunk.h"

namespace chronos::worker::reference {
namespace {

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& g, double eps) {
  return x * at::rsqrt(x.pow(2).mean({-1}, /*keepdim=*/true) + eps) * g;
}

// Rotary embedding, rotate-half form, on [b, heads, s, hd].
at::Tensor Rotary(const at::Tensor& t, double theta) {
  const int64_t s = t.size(2), hd = t.size(3);
  at::Tensor freqs = 1.0 / at::pow(theta, at::arange(0, hd, 2, at::kDouble) / hd);
  at::Tensor ang = at::arange(s, at::kDouble).unsqueeze(1) * freqs.unsqueeze(0);
  at::Tensor cos = at::cat({ang, ang}, 1).cos().to(at::kFloat);
  at::Tensor sin = at::cat({ang, ang}, 1).sin().to(at::kFloat);
  at::Tensor a = t.narrow(3, 0, hd / 2), b = t.narrow(3, hd / 2, hd / 2);
  return t * cos + at::cat({-b, a}, 3) * sin;
}

}  // namespace

RefLayerParams LayerParamsFrom(const NamedTensors& params, int layer) {
  const std::string p = "layers." + std::to_string(layer) + ".";
  RefLayerParams r;
  r.wqkv = params.at(p + "wqkv");
  r.wo = params.at(p + "wo");
  r.w_gate = params.at(p + "w_gate");
  r.w_up = params.at(p + "w_up");
  r.w_down = params.at(p + "w_down");
  r.g1 = params.at(p + "g1");
  r.g2 = params.at(p + "g2");
  return r;
}

at::Tensor RefEmbedding(const at::Tensor& wte, const at::Tensor& ids) {
  return at::embedding(wte, ids);
}

at::Tensor RefLayer(const ModelDims& d, const RefLayerParams& p, const at::Tensor& x) {
  const int64_t b = x.size(0), s = x.size(1), h = d.hidden, nh = d.heads;
  const int64_t hd = h / nh;
  at::Tensor qkv = at::linear(RmsNorm(x, p.g1, d.norm_eps), p.wqkv);
  std::vector<at::Tensor> parts = qkv.split(h, -1);
  auto heads = [&](const at::Tensor& t) { return t.view({b, s, nh, hd}).permute({0, 2, 1, 3}); };
  at::Tensor q = Rotary(heads(parts[0]), d.rope_theta);
  at::Tensor k = Rotary(heads(parts[1]), d.rope_theta);
  at::Tensor v = heads(parts[2]);
  at::Tensor scores = at::matmul(q, k.transpose(2, 3)) / std::sqrt(double(hd));
  at::Tensor allowed = at::ones({s, s}, at::kBool).tril();
  scores = scores.masked_fill(allowed.logical_not(), -INFINITY);
  at::Tensor o = at::matmul(at::softmax(scores, -1), v);
  o = o.permute({0, 2, 1, 3}).reshape({b, s, h});
  at::Tensor x2 = x + at::linear(o, p.wo);
  at::Tensor xn2 = RmsNorm(x2, p.g2, d.norm_eps);
  at::Tensor mlp =
      at::linear(at::silu(at::linear(xn2, p.w_gate)) * at::linear(xn2, p.w_up), p.w_down);
  return x2 + mlp;
}

at::Tensor RefHeadLoss(const ModelDims& d, const at::Tensor& gf, const at::Tensor& w,
                       const at::Tensor& xf, const at::Tensor& targets) {
  at::Tensor logits = at::linear(RmsNorm(xf, gf, d.norm_eps), w);
  return at::cross_entropy_loss(logits.reshape({-1, d.vocab}), targets.reshape({-1}));
}

ReferenceGpt::ReferenceGpt(const ModelDims& d, uint64_t seed) : dims_(d) {
  const double std = d.init_std;
  const double proj_std = d.init_std / std::sqrt(2.0 * d.layers);
  auto add = [&](int layer, const std::string& name, std::vector<int64_t> shape, double sd) {
    params_[name] = InitialParameter(seed, layer, name, shape, sd).requires_grad_(true);
  };
  add(-1, "embedding.wte", {d.vocab, d.hidden}, std);
  for (int l = 0; l < d.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    add(l, p + "wqkv", {3 * d.hidden, d.hidden}, std);
    add(l, p + "wo", {d.hidden, d.hidden}, proj_std);
    add(l, p + "w_gate", {d.ffn, d.hidden}, std);
    add(l, p + "w_up", {d.ffn, d.hidden}, std);
    add(l, p + "w_down", {d.hidden, d.ffn}, proj_std);
    add(l, p + "g1", {d.hidden}, std);
    add(l, p + "g2", {d.hidden}, std);
  }
  add(-2, "head.gf", {d.hidden}, std);
  add(-2, "head.w", {d.vocab, d.hidden}, std);
}

ReferenceGpt::LossAndGrads ReferenceGpt::Compute(const std::vector<at::Tensor>& ids,
                                                 const std::vector<at::Tensor>& targets) {
  at::Tensor total = at::zeros({}, at::kFloat);
  int64_t tokens = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    at::Tensor x = RefEmbedding(params_.at("embedding.wte"), ids[i]);
    for (int l = 0; l < dims_.layers; ++l) {
      x = RefLayer(dims_, LayerParamsFrom(params_, l), x);
    }
    // Per-micro-batch mean times its token count: a sum over tokens.
    total = total + RefHeadLoss(dims_, params_.at("head.gf"), params_.at("head.w"), x, targets[i]) *
                        double(ids[i].numel());
    tokens += ids[i].numel();
  }
  at::Tensor loss = total / double(tokens);
  loss.backward();
  LossAndGrads out;
  out.loss = loss.item<double>();
  for (auto& [name, p] : params_) {
    out.grads[name] = p.grad().clone();
    p.mutable_grad() = at::Tensor();
  }
  return out;
}

double MaxRelErr(const at::Tensor& a, const at::Tensor& ref) {
  at::Tensor r = ref.to(at::kDouble);
  const double scale = std::max(r.abs().max().item<double>(), 1e-30);
  return (a.to(at::kDouble) - r).abs().max().item<double>() / scale;
}

double RefLearningRate(const RefTrainOptions& o, int64_t it) {
  if (o.warmup_iterations > 0 && it <= o.warmup_iterations) {
    return o.lr * double(it) / double(o.warmup_iterations);
  }
  const double span = double(std::max<int64_t>(1, o.total_iterations - o.warmup_iterations));
  const double progress = double(it - o.warmup_iterations) / span;
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + std::cos(M_PI * progress));
}

double RefAdamW::Step(int64_t it, NamedTensors* params, const NamedTensors& grads) {
  at::NoGradGuard no_grad;
  double sq = 0;
  for (const auto& [name, g] : grads) sq += g.to(at::kDouble).pow(2).sum().item<double>();
  const double norm = std::sqrt(sq);
  // min(1, clip / (norm + eps)), as torch.nn.utils.clip_grad_norm_.
  const double clip = o_.grad_clip > 0 ? std::min(1.0, o_.grad_clip / (norm + 1e-6)) : 1.0;
  const double lr = RefLearningRate(o_, it);
  ++steps_;
  const double bc1 = 1 - std::pow(o_.beta1, double(steps_));
  const double bc2 = 1 - std::pow(o_.beta2, double(steps_));
  for (auto& [name, p] : *params) {
    at::Tensor g = grads.at(name) * clip;
    if (!m_.count(name)) {
      m_[name] = at::zeros_like(p);
      v_[name] = at::zeros_like(p);
    }
    at::Tensor& m = m_[name];
    at::Tensor& v = v_[name];
    m = o_.beta1 * m + (1 - o_.beta1) * g;
    v = o_.beta2 * v + (1 - o_.beta2) * g * g;
    if (p.dim() >= 2) p.sub_(p * (lr * o_.weight_decay));
    p.sub_(lr * (m / bc1) / ((v / bc2).sqrt() + o_.eps));
  }
  return norm;
}

double RefTrainStep(ReferenceGpt* model, RefAdamW* optimizer, int64_t it,
                    const std::vector<at::Tensor>& ids, const std::vector<at::Tensor>& targets) {
  ReferenceGpt::LossAndGrads lg = model->Compute(ids, targets);
  optimizer->Step(it, &model->params(), lg.grads);
  return lg.loss;
}

}  // namespace chronos::worker::reference
