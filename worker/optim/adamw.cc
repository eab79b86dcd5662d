#include "worker/optim/adamw.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "worker/pooled_host_tensor.h"

namespace chronos::worker {

double LearningRate(const AdamWOptions& o, int64_t it) {
  if (o.warmup_iterations > 0 && it <= o.warmup_iterations) {
    return o.lr * static_cast<double>(it) / static_cast<double>(o.warmup_iterations);
  }
  const double span =
      static_cast<double>(std::max<int64_t>(1, o.total_iterations - o.warmup_iterations));
  const double progress =
      std::clamp(static_cast<double>(it - o.warmup_iterations) / span, 0.0, 1.0);
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(M_PI * progress));
}

AdamW::AdamW(std::vector<Param*> params, AdamWOptions options)
    : params_(std::move(params)), o_(options) {
  m_.reserve(params_.size());
  v_.reserve(params_.size());
  for (Param* p : params_) {
    if (o_.offload_state) {
      // Pinned host memory (the stage's pool) lets the per-param copies run
      // at the link's rate on a GPU.
      m_.push_back(EmptyPooledHostTensor(o_.host_pool, p->master.sizes(), at::kFloat).zero_());
      v_.push_back(EmptyPooledHostTensor(o_.host_pool, p->master.sizes(), at::kFloat).zero_());
      continue;
    }
    at::TensorOptions opts = p->master.options().dtype(at::kFloat);
    m_.push_back(at::zeros(p->master.sizes(), opts));
    v_.push_back(at::zeros(p->master.sizes(), opts));
  }
}

double AdamW::LocalGradSquaredNorm() const {
  // Accumulated in fp64 on the params' device, read back once.
  at::Tensor total;
  for (const Param* p : params_) {
    if (!p->grad.defined()) continue;
    at::Tensor g = p->grad.to(at::kDouble);
    at::Tensor sq = at::sum(g * g);
    total = total.defined() ? total + sq : sq;
  }
  return total.defined() ? total.item<double>() : 0.0;
}

void AdamW::Step(int64_t iteration, double global_grad_norm) {
  ++step_;
  const double lr = LearningRate(o_, iteration);
  // The standard global-norm clip (torch.nn.utils.clip_grad_norm_):
  // scale = min(1, clip / (norm + eps)). The single-process reference
  // (tests/worker/reference_gpt.cc) clips the same way.
  constexpr double kClipEps = 1e-6;
  double scale = 1.0;
  if (o_.grad_clip > 0) {
    scale = std::min(1.0, o_.grad_clip / (global_grad_norm + kClipEps));
  }
  const double t = static_cast<double>(step_);
  const double bias1 = 1.0 - std::pow(o_.beta1, t);
  const double bias2 = 1.0 - std::pow(o_.beta2, t);
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = *params_[i];
    if (!p.grad.defined()) continue;
    at::Tensor& g = p.grad;
    if (scale != 1.0) g.mul_(scale);
    // Offloaded moments are staged on the param's device for the update
    // (a no-op view when they already live there).
    at::Tensor m = m_[i].to(p.master.device());
    at::Tensor v = v_[i].to(p.master.device());
    m.mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
    v.mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
    if (p.weight_decay && o_.weight_decay != 0.0) {
      p.master.mul_(1.0 - lr * o_.weight_decay);
    }
    // master -= lr * (m / bias1) / (sqrt(v / bias2) + eps)
    at::Tensor denom = (v / bias2).sqrt_().add_(o_.eps);
    p.master.addcdiv_(m, denom, -lr / bias1);
    if (!m.is_same(m_[i])) m_[i].copy_(m);
    if (!v.is_same(v_[i])) v_[i].copy_(v);
    // Same as Param::SyncValue(); inlined so the optimizer does not depend
    // on the model's translation unit.
    if (p.value.defined() && !p.value.is_same(p.master)) {
      p.value.copy_(p.master);
    }
    g.zero_();
  }
}

void AdamW::ZeroGrad() {
  for (Param* p : params_) {
    if (p->grad.defined()) p->grad.zero_();
  }
}

std::vector<at::Tensor> AdamW::StateTensors() {
  std::vector<at::Tensor> out;
  out.reserve(2 * params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    out.push_back(m_[i]);
    out.push_back(v_[i]);
  }
  return out;
}

}  // namespace chronos::worker
