// The independent autograd reference against the composition of Chunks (all
// chunks in one process, sequential micro-batches), and its optimizer against
// LibTorch's AdamW.
#include "tests/worker/reference_gpt.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/activation_layout.h"
#include "worker/memory_ledger.h"
#include "worker/model/chunk.h"
#include "worker/stash.h"

namespace chronos::worker {
namespace {

using reference::MaxRelErr;
using reference::NamedTensors;
using reference::RefAdamW;
using reference::ReferenceGpt;
using reference::RefTrainOptions;

constexpr uint64_t kSeed = 42;
constexpr double kTol = 1e-5;

ModelDims SmallDims(bool flash) {
  ModelDims d;
  d.layers = 3;
  d.hidden = 32;
  d.heads = 4;
  d.ffn = 48;
  d.vocab = 64;
  d.seq_len = 16;
  d.micro_batch = 2;
  d.flash = flash;
  return d;
}

struct Batch {
  std::vector<at::Tensor> ids, targets;
};

Batch MakeBatch(const ModelDims& d, int m, int salt) {
  at::manual_seed(1000 + salt);
  Batch b;
  for (int i = 0; i < m; ++i) {
    b.ids.push_back(at::randint(d.vocab, {d.micro_batch, d.seq_len}, at::kLong));
    b.targets.push_back(at::randint(d.vocab, {d.micro_batch, d.seq_len}, at::kLong));
  }
  return b;
}

// A pipeline's chunks run in one process: every micro-batch's F through all
// chunks (each chunk with its own save mode), then the B's in reverse.
class ChunkPipeline {
 public:
  ChunkPipeline(const ModelDims& d, const std::vector<int>& layers_per_chunk)
      : dims_(d), stash_(&ledger_) {
    int first = 0;
    const int n = static_cast<int>(layers_per_chunk.size());
    for (int c = 0; c < n; ++c) {
      ChunkSpec spec{c, first, layers_per_chunk[c], c == 0, c == n - 1};
      first += layers_per_chunk[c];
      chunks_.push_back(std::make_unique<Chunk>(d, spec, kSeed, at::TensorOptions()));
    }
  }

  // Mean loss over the batch; gradients accumulate into the Params.
  double Run(const Batch& batch) {
    const int m = static_cast<int>(batch.ids.size());
    const int n = static_cast<int>(chunks_.size());
    const SaveMode modes[] = {SaveMode::kChunk, SaveMode::kLayer, SaveMode::kAll,
                              SaveMode::kSelective};
    double loss = 0;
    for (int mb = 0; mb < m; ++mb) {
      at::Tensor x = batch.ids[mb];
      for (int c = 0; c < n; ++c) {
        x = chunks_[c]->Forward(mb, x, c == n - 1 ? batch.targets[mb] : at::Tensor(),
                                modes[(c + mb) % 4], &stash_);
      }
      loss += x.item<double>() / m;
    }
    const double loss_scale = 1.0 / double(m * dims_.tokens());
    for (int mb = m - 1; mb >= 0; --mb) {
      at::Tensor g;
      for (int c = n - 1; c >= 0; --c) {
        chunks_[c]->Recompute(mb, &stash_);
        if ((c + mb) % 2 == 0) {
          g = chunks_[c]->Backward(mb, g, loss_scale, &stash_);
        } else {
          g = chunks_[c]->BackwardInput(mb, g, loss_scale, &stash_);
          chunks_[c]->BackwardWeight(mb, &stash_);
        }
      }
      EXPECT_FALSE(g.defined());
    }
    EXPECT_EQ(stash_.size(), 0u);
    EXPECT_EQ(ledger_.Snapshot().resident_bytes, 0);
    return loss;
  }

  std::vector<Param*> params() {
    std::vector<Param*> out;
    for (auto& c : chunks_) {
      for (Param* p : c->params()) out.push_back(p);
    }
    return out;
  }

 private:
  ModelDims dims_;
  MemoryLedger ledger_;
  ActivationStash stash_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
};

class ReferenceVsChunksTest : public ::testing::TestWithParam<std::tuple<bool, std::vector<int>>> {
};

TEST_P(ReferenceVsChunksTest, LossAndEveryGradientAgree) {
  const auto& [flash, layers_per_chunk] = GetParam();
  const ModelDims d = SmallDims(flash);
  const Batch batch = MakeBatch(d, 3, 0);
  ReferenceGpt ref(d, kSeed);
  const ReferenceGpt::LossAndGrads want = ref.Compute(batch.ids, batch.targets);

  ChunkPipeline pipeline(d, layers_per_chunk);
  const double loss = pipeline.Run(batch);
  EXPECT_NEAR(loss, want.loss, kTol * want.loss);
  EXPECT_GT(loss, 0.9 * std::log(double(d.vocab)));  // near-uniform at init
  const std::vector<Param*> params = pipeline.params();
  EXPECT_EQ(params.size(), want.grads.size());
  for (Param* p : params) {
    ASSERT_TRUE(want.grads.count(p->name)) << p->name;
    EXPECT_TRUE(at::equal(p->master, ref.params().at(p->name).detach()))
        << p->name << ": same initial value";
    EXPECT_LE(MaxRelErr(p->grad, want.grads.at(p->name)), kTol) << p->name;
  }
}

INSTANTIATE_TEST_SUITE_P(Partitions, ReferenceVsChunksTest,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(std::vector<int>{3},
                                                              std::vector<int>{1, 1, 1},
                                                              std::vector<int>{0, 2, 1, 0})));

TEST(ReferenceTrainingTest, ChunksWithRefAdamWFollowTheReference) {
  const ModelDims d = SmallDims(true);
  RefTrainOptions o;
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.warmup_iterations = 2;
  o.total_iterations = 4;
  o.weight_decay = 0.1;
  o.grad_clip = 0.5;
  ReferenceGpt ref(d, kSeed);
  RefAdamW ref_opt(o);
  ChunkPipeline pipeline(d, {1, 2});
  RefAdamW chunk_opt(o);
  NamedTensors masters;
  for (Param* p : pipeline.params()) masters[p->name] = p->master;

  std::vector<double> losses;
  for (int it = 1; it <= o.total_iterations; ++it) {
    const Batch batch = MakeBatch(d, 2, it);
    const double want = reference::RefTrainStep(&ref, &ref_opt, it, batch.ids, batch.targets);
    const double got = pipeline.Run(batch);
    EXPECT_NEAR(got, want, kTol * want) << "iteration " << it;
    NamedTensors grads;
    for (Param* p : pipeline.params()) grads[p->name] = p->grad.clone();
    chunk_opt.Step(it, &masters, grads);
    for (Param* p : pipeline.params()) {
      p->SyncValue();
      p->grad.zero_();
    }
    losses.push_back(got);
  }
  // Adam divides by sqrt(v): where a gradient entry is ~0, float-rounding
  // differences between the two backwards become visible in the update, so
  // the weights agree less tightly than the losses and gradients do.
  for (Param* p : pipeline.params()) {
    EXPECT_LE(MaxRelErr(p->master, ref.params().at(p->name).detach()), 1e-3) << p->name;
  }
  // Training on fresh random tokens still fits their unigram noise a little.
  EXPECT_LT(losses.back(), losses.front());
}

TEST(RefLearningRateTest, WarmupThenCosineToTheFloor) {
  RefTrainOptions o;
  o.lr = 1.0;
  o.min_lr = 0.1;
  o.warmup_iterations = 4;
  o.total_iterations = 14;
  EXPECT_DOUBLE_EQ(reference::RefLearningRate(o, 1), 0.25);
  EXPECT_DOUBLE_EQ(reference::RefLearningRate(o, 4), 1.0);
  EXPECT_NEAR(reference::RefLearningRate(o, 9), 0.55, 1e-12);  // halfway
  EXPECT_NEAR(reference::RefLearningRate(o, 14), 0.1, 1e-12);
  double prev = 2;
  for (int it = 5; it <= 14; ++it) {
    const double lr = reference::RefLearningRate(o, it);
    EXPECT_LT(lr, prev);
    prev = lr;
  }
  o.warmup_iterations = 0;
  EXPECT_LT(reference::RefLearningRate(o, 1), 1.0);
  EXPECT_GT(reference::RefLearningRate(o, 1), 0.98);
}

// RefAdamW against torch::optim::AdamW with a decay and a no-decay group,
// the learning rate set per iteration and the gradients pre-clipped.
TEST(RefAdamWTest, MatchesTorchAdamWWithParamGroups) {
  RefTrainOptions o;
  o.lr = 0.05;
  o.min_lr = 0.005;
  o.warmup_iterations = 2;
  o.total_iterations = 6;
  o.weight_decay = 0.3;
  o.grad_clip = 1.5;
  at::manual_seed(3);
  NamedTensors mine = {{"m", at::randn({4, 3})}, {"g", at::randn({3})}};
  at::Tensor tm = mine["m"].clone(), tg = mine["g"].clone();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{tm}, std::make_unique<torch::optim::AdamWOptions>(
                                                       torch::optim::AdamWOptions(o.lr)
                                                           .betas({o.beta1, o.beta2})
                                                           .eps(o.eps)
                                                           .weight_decay(o.weight_decay)));
  groups.emplace_back(
      std::vector<at::Tensor>{tg},
      std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(0)));
  torch::optim::AdamW torch_opt(groups);
  RefAdamW ref_opt(o);
  for (int it = 1; it <= o.total_iterations; ++it) {
    NamedTensors grads = {{"m", at::randn({4, 3}) * it}, {"g", at::randn({3}) * it}};
    const double norm = ref_opt.Step(it, &mine, grads);
    const double want_norm =
        std::sqrt(grads["m"].pow(2).sum().item<double>() + grads["g"].pow(2).sum().item<double>());
    EXPECT_NEAR(norm, want_norm, 1e-5 * want_norm);
    const double scale = std::min(1.0, o.grad_clip / want_norm);
    tm.mutable_grad() = grads["m"] * scale;
    tg.mutable_grad() = grads["g"] * scale;
    for (auto& group : torch_opt.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options())
          .lr(reference::RefLearningRate(o, it));
    }
    torch_opt.step();
    EXPECT_LE(MaxRelErr(mine["m"], tm), 1e-6) << "iteration " << it;
    EXPECT_LE(MaxRelErr(mine["g"], tg), 1e-6) << "iteration " << it;
  }
}

}  // namespace
}  // namespace chronos::worker
