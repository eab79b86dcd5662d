// An independent single-process LLaMA-style GPT written with LibTorch
// autograd: the yardstick for the worker's explicit model math (Chunk) and,
// with RefAdamW, for a whole training step. It shares only ModelDims and
// InitialParameter with the worker; every formula is written again here in
// the most direct form. fp32 on the CPU. Tests only.
#ifndef CHRONOS_TESTS_WORKER_REFERENCE_GPT_H_
#define CHRONOS_TESTS_WORKER_REFERENCE_GPT_H_

#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "worker/model/model_dims.h"
#include "worker/optim/adamw.h"

namespace chronos::worker::reference {

using NamedTensors = std::map<std::string, at::Tensor>;

// max |a - ref| / max |ref|: a relative error that tolerates entries near 0.
double MaxRelErr(const at::Tensor& a, const at::Tensor& ref);

// One transformer layer's parameters (any tensors; leaves requiring grad
// when gradients are wanted).
struct RefLayerParams {
  at::Tensor wqkv, wo, w_gate, w_up, w_down, g1, g2;
};

// The layer's parameters out of a by-name map ("layers.<i>.wqkv", ...).
RefLayerParams LayerParamsFrom(const NamedTensors& params, int layer);

// Autograd building blocks, usable on their own for per-unit checks.
at::Tensor RefEmbedding(const at::Tensor& wte, const at::Tensor& ids);
at::Tensor RefLayer(const ModelDims& dims, const RefLayerParams& p, const at::Tensor& x);
// Mean cross-entropy over all b*s tokens (0-dim).
at::Tensor RefHeadLoss(const ModelDims& dims, const at::Tensor& gf, const at::Tensor& w,
                       const at::Tensor& xf, const at::Tensor& targets);

class ReferenceGpt {
 public:
  // Parameters from InitialParameter(seed, ...) with the documented std rule,
  // named like the worker's Params ("embedding.wte", "layers.<i>.wqkv", ...,
  // "head.gf", "head.w").
  ReferenceGpt(const ModelDims& dims, uint64_t seed);

  // fp32 leaves with requires_grad; update them under at::NoGradGuard.
  NamedTensors& params() { return params_; }

  struct LossAndGrads {
    double loss = 0;     // mean cross-entropy over every token of every mb
    NamedTensors grads;  // d loss / d param, by name
  };
  // ids, targets: one int64 [b, s] tensor per micro-batch.
  LossAndGrads Compute(const std::vector<at::Tensor>& ids, const std::vector<at::Tensor>& targets);

 private:
  ModelDims dims_;
  NamedTensors params_;
};

// The same hyper-parameters as the engine's optimizer; only the arithmetic
// below (learning-rate schedule, clipping, AdamW) is written independently.
using RefTrainOptions = AdamWOptions;

// lr for 1-based iteration `it`: linear warm-up over warmup_iterations, then
// cosine from lr to min_lr at total_iterations.
double RefLearningRate(const RefTrainOptions& o, int64_t it);

// AdamW: gradients clipped to grad_clip by their global norm (all params
// together), decoupled decay p -= lr*wd*p for matrices only (not the norm
// gains), bias-corrected moments, eps added to sqrt(v_hat). Plain fp32
// tensor ops on whatever tensors it is given.
class RefAdamW {
 public:
  explicit RefAdamW(RefTrainOptions options) : o_(options) {}

  // One step at 1-based iteration `it`; `params` are updated in place.
  // Returns the global gradient norm before clipping.
  double Step(int64_t it, NamedTensors* params, const NamedTensors& grads);

 private:
  RefTrainOptions o_;
  NamedTensors m_, v_;
  int64_t steps_ = 0;
};

// One training iteration of `model`: loss and gradients over the micro-
// batches, then an optimizer step. Returns the loss.
double RefTrainStep(ReferenceGpt* model, RefAdamW* optimizer, int64_t it,
                    const std::vector<at::Tensor>& ids, const std::vector<at::Tensor>& targets);

}  // namespace chronos::worker::reference

#endif  // CHRONOS_TESTS_WORKER_REFERENCE_GPT_H_
