// AdamW over a set of Params with fp32 master weights, global-norm gradient
// clipping, and a warm-up + cosine learning-rate schedule. Optimizer state
// (moments) lives on the params' device, or in host memory when
// AdamWOptions::offload_state is set. Not thread-safe: the executor thread
// owns it.
#ifndef CHRONOS_WORKER_OPTIM_ADAMW_H_
#define CHRONOS_WORKER_OPTIM_ADAMW_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "worker/model/chunk.h"
#include "worker/pinned_pool.h"

namespace chronos::worker {

struct AdamWOptions {
  double lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup_iterations = 0;
  int64_t total_iterations = 1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double grad_clip = 0.0;  // 0 = off
  // Keep the moments in host memory and stage them through the params'
  // device one param at a time (optimizer offload). On a CPU device it is
  // the same memory, but the same code path runs.
  bool offload_state = false;
  // Where offloaded state lives: a GPU stage's pinned pool; null = ordinary
  // host memory.
  std::shared_ptr<PinnedPool> host_pool;
};

// Learning rate for 1-based iteration `it`: linear warm-up to lr over
// warmup_iterations, then cosine decay to min_lr at total_iterations.
double LearningRate(const AdamWOptions& o, int64_t it);

class AdamW {
 public:
  AdamW(std::vector<Param*> params, AdamWOptions options);

  // Sum of squared gradient entries of this optimizer's params (fp64 scalar
  // on CPU); the executor all-reduces it across stages for the global norm.
  double LocalGradSquaredNorm() const;
  // Scales gradients by clip / (global_norm + 1e-6) when clip > 0 and
  // global_norm > clip, applies one AdamW step with the iteration's learning
  // rate, bias-corrected by the optimizer's own 1-based step count
  // (decoupled decay p -= lr*wd*p for params with weight_decay, before the
  // Adam update), copies masters into values and zeroes gradients. Params
  // whose grad is undefined are skipped.
  void Step(int64_t iteration, double global_grad_norm);
  void ZeroGrad();

  int64_t step_count() const { return step_; }
  // Moments in a fixed order (for checkpoints): m0, v0, m1, v1, ... These
  // are the optimizer's own tensors: copy_ into them to restore.
  std::vector<at::Tensor> StateTensors();
  void SetStepCount(int64_t s) { step_ = s; }

 private:
  std::vector<Param*> params_;
  AdamWOptions o_;
  std::vector<at::Tensor> m_, v_;
  int64_t step_ = 0;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_OPTIM_ADAMW_H_
