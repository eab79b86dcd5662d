// Chunk's explicit forward/backward against LibTorch autograd (the reference
// GPT's units), for every kind of chunk, both attention flavours, every save
// mode and B vs BI+BW; and the stash bytes the worker's ledger sees against
// core/activation_layout's prediction.
#include "worker/model/chunk.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "chronos/v1/job.pb.h"
#include "core/activation_layout.h"
#include "tests/worker/reference_gpt.h"
#include "worker/memory_ledger.h"
#include "worker/model/model_dims_from_spec.h"
#include "worker/stash.h"

namespace chronos::worker {
namespace {

using reference::MaxRelErr;
using reference::NamedTensors;

constexpr uint64_t kSeed = 1234;
constexpr double kTol = 1e-5;

ModelDims TinyDims(bool flash) {
  ModelDims d;
  d.layers = 3;
  d.hidden = 16;
  d.heads = 2;
  d.ffn = 24;
  d.vocab = 32;
  d.seq_len = 8;
  d.micro_batch = 2;
  d.flash = flash;
  return d;
}

struct ChunkCase {
  std::string name;
  ChunkSpec spec;
};

std::vector<ChunkCase> Cases() {
  // Tiny model of 3 layers, cut in the ways a pipeline can cut it.
  return {
      {"EmbeddingOnly", {0, 0, 0, true, false}}, {"EmbeddingAndLayers", {0, 0, 2, true, false}},
      {"MiddleLayers", {1, 1, 2, false, false}}, {"LayersAndHead", {2, 1, 2, false, true}},
      {"HeadOnly", {3, 3, 0, false, true}},      {"WholeModel", {0, 0, 3, true, true}},
  };
}

// One micro-batch's data for a chunk: token ids or an activation, targets for
// the last chunk, an output gradient otherwise.
struct ChunkData {
  at::Tensor input;
  at::Tensor targets;
  at::Tensor grad_output;
  double loss_scale = 0;
};

ChunkData MakeData(const ModelDims& d, const ChunkSpec& spec, int salt) {
  at::manual_seed(100 + salt);
  ChunkData data;
  const int64_t b = d.micro_batch, s = d.seq_len;
  if (spec.has_embedding) {
    data.input = at::randint(d.vocab, {b, s}, at::kLong);
  } else {
    data.input = at::randn({b, s, d.hidden});
  }
  if (spec.has_head) {
    data.targets = at::randint(d.vocab, {b, s}, at::kLong);
    // Not 1/tokens on purpose: the scale must flow through unchanged.
    data.loss_scale = 0.37 / double(b * s);
  } else {
    data.grad_output = at::randn({b, s, d.hidden});
  }
  return data;
}

struct Result {
  at::Tensor output;  // activation, or the loss
  at::Tensor dinput;  // undefined for chunk 0
  NamedTensors grads;
};

// Autograd through the reference units with the chunk's initial parameters.
Result AutogradResult(const ModelDims& d, const ChunkSpec& spec, const ChunkData& data) {
  Chunk chunk(d, spec, kSeed, at::TensorOptions().dtype(at::kFloat));
  NamedTensors p;
  for (Param* param : chunk.params()) {
    p[param->name] = param->master.clone().requires_grad_(true);
  }
  at::Tensor x = data.input;
  if (spec.has_embedding) {
    x = reference::RefEmbedding(p.at("embedding.wte"), x);
  } else {
    x = x.clone().requires_grad_(true);
  }
  at::Tensor leaf = x;
  for (int i = 0; i < spec.num_layers; ++i) {
    x = reference::RefLayer(d, reference::LayerParamsFrom(p, spec.first_layer + i), x);
  }
  Result r;
  at::Tensor objective;
  if (spec.has_head) {
    x = reference::RefHeadLoss(d, p.at("head.gf"), p.at("head.w"), x, data.targets);
    // Chunk's backward starts from d(sum of token losses * loss_scale).
    objective = x * (double(data.targets.numel()) * data.loss_scale);
  } else {
    objective = (x * data.grad_output).sum();
  }
  objective.backward();
  r.output = x.detach();
  if (!spec.has_embedding) r.dinput = leaf.grad();
  for (auto& [name, t] : p) r.grads[name] = t.grad();
  return r;
}

int64_t UnitBytes(const std::vector<StashTensor>& t, const ModelDims& d, int64_t act_bytes) {
  return StashBytes(t, d.tokens(), act_bytes);
}

// Runs F (+RECOMPUTE) and B or BI+BW on a fresh chunk for one micro-batch and
// checks, on the way, the stash bytes and the ledger peak the layout implies.
Result RunChunk(const ModelDims& d, const ChunkSpec& spec, const ChunkData& data, SaveMode mode,
                bool split, at::ScalarType dtype = at::kFloat) {
  const int mb = 5;
  const int64_t act_bytes = dtype == at::kFloat ? 4 : 2;
  Chunk chunk(d, spec, kSeed, at::TensorOptions().dtype(dtype));
  MemoryLedger ledger;
  ActivationStash stash(&ledger);
  const LayoutDims layout = d.layout();

  std::vector<int64_t> forward_bytes, kept_bytes, wgrad_bytes;
  int64_t kept_total = 0;
  for (int u = 0; u < chunk.num_units(); ++u) {
    const UnitKind kind = chunk.unit_kind(u);
    forward_bytes.push_back(UnitBytes(ForwardStash(kind, layout), d, act_bytes));
    kept_bytes.push_back(UnitBytes(KeptStash(kind, layout, mode, u == 0), d, act_bytes));
    wgrad_bytes.push_back(UnitBytes(WeightGradStash(kind, layout), d, act_bytes));
    kept_total += kept_bytes.back();
  }

  at::Tensor input = data.input;
  if (input.is_floating_point()) input = input.to(dtype);
  Result r;
  r.output = chunk.Forward(mb, input, data.targets, mode, &stash);
  EXPECT_EQ(stash.ResidentBytes(mb, spec.index), kept_total);
  EXPECT_EQ(ledger.Snapshot().resident_bytes, kept_total);

  chunk.Recompute(mb, &stash);
  if (mode == SaveMode::kChunk) kept_bytes = forward_bytes;
  int64_t current = 0;
  for (int64_t b : kept_bytes) current += b;
  EXPECT_EQ(stash.ResidentBytes(mb, spec.index), current);

  // The ledger's peak over the backward, from the per-unit order: Put(the
  // rebuilt tensors), Erase(the forward tensors), [BI: Put(the W-stash)].
  ledger.ResetPeaks();
  int64_t peak = current;
  int64_t wgrad_total = 0;
  for (int u = chunk.num_units() - 1; u >= 0; --u) {
    current += forward_bytes[u] - kept_bytes[u];
    peak = std::max(peak, current);
    current -= forward_bytes[u];
    if (split) {
      current += wgrad_bytes[u];
      wgrad_total += wgrad_bytes[u];
      peak = std::max(peak, current);
    }
  }
  at::Tensor grad_output = data.grad_output;
  if (grad_output.defined()) grad_output = grad_output.to(dtype);
  if (split) {
    r.dinput = chunk.BackwardInput(mb, grad_output, data.loss_scale, &stash);
    EXPECT_EQ(ledger.Snapshot().peak_resident_bytes, peak);
    EXPECT_EQ(stash.ResidentBytes(mb, spec.index), wgrad_total);
    EXPECT_EQ(ledger.Snapshot().resident_bytes, wgrad_total);
    chunk.BackwardWeight(mb, &stash);
  } else {
    r.dinput = chunk.Backward(mb, grad_output, data.loss_scale, &stash);
    EXPECT_EQ(ledger.Snapshot().peak_resident_bytes, peak);
  }
  EXPECT_EQ(stash.size(), 0u);
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 0);
  for (Param* p : chunk.params()) r.grads[p->name] = p->grad.clone();
  return r;
}

const char* ModeName(SaveMode m) {
  switch (m) {
    case SaveMode::kAll:
      return "All";
    case SaveMode::kLayer:
      return "Layer";
    case SaveMode::kSelective:
      return "Selective";
    case SaveMode::kChunk:
      return "Chunk";
  }
  return "?";
}

void ExpectClose(const Result& got, const Result& want, double tol) {
  EXPECT_LE(MaxRelErr(got.output, want.output), tol) << "output";
  ASSERT_EQ(got.dinput.defined(), want.dinput.defined());
  if (want.dinput.defined()) {
    EXPECT_LE(MaxRelErr(got.dinput, want.dinput), tol) << "input gradient";
  }
  ASSERT_EQ(got.grads.size(), want.grads.size());
  for (const auto& [name, g] : want.grads) {
    ASSERT_TRUE(got.grads.count(name)) << name;
    EXPECT_LE(MaxRelErr(got.grads.at(name), g), tol) << name;
  }
}

void ExpectIdentical(const Result& got, const Result& want) {
  EXPECT_TRUE(at::equal(got.output, want.output)) << "output";
  if (want.dinput.defined()) {
    EXPECT_TRUE(at::equal(got.dinput, want.dinput)) << "input gradient";
  }
  for (const auto& [name, g] : want.grads) {
    EXPECT_TRUE(at::equal(got.grads.at(name), g)) << name;
  }
}

class ChunkGradientTest : public ::testing::TestWithParam<std::tuple<ChunkCase, bool>> {};

TEST_P(ChunkGradientTest, EveryModeAndSplitMatchesAutogradAndEachOther) {
  const auto& [c, flash] = GetParam();
  const ModelDims d = TinyDims(flash);
  const ChunkData data = MakeData(d, c.spec, 1);
  const Result want = AutogradResult(d, c.spec, data);
  const Result base = RunChunk(d, c.spec, data, SaveMode::kAll, false);
  {
    SCOPED_TRACE("kAll, B vs autograd");
    ExpectClose(base, want, kTol);
  }
  for (SaveMode mode : {SaveMode::kAll, SaveMode::kLayer, SaveMode::kSelective, SaveMode::kChunk}) {
    for (bool split : {false, true}) {
      SCOPED_TRACE(std::string(ModeName(mode)) + (split ? " BI+BW" : " B"));
      ExpectIdentical(RunChunk(d, c.spec, data, mode, split), base);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Chunks, ChunkGradientTest,
                         ::testing::Combine(::testing::ValuesIn(Cases()), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<ChunkGradientTest::ParamType>& info) {
                           return std::get<0>(info.param).name +
                                  (std::get<1>(info.param) ? "Flash" : "Standard");
                         });

TEST(ChunkTest, GradientsAccumulateOverInterleavedMicroBatches) {
  const ModelDims d = TinyDims(false);
  const ChunkSpec spec{1, 1, 2, false, false};
  const ChunkData a = MakeData(d, spec, 2), b = MakeData(d, spec, 3);
  Chunk chunk(d, spec, kSeed, at::TensorOptions().dtype(at::kFloat));
  MemoryLedger ledger;
  ActivationStash stash(&ledger);
  chunk.Forward(0, a.input, {}, SaveMode::kLayer, &stash);
  chunk.Forward(1, b.input, {}, SaveMode::kAll, &stash);
  const int64_t mb0_bytes = stash.ResidentBytes(0, spec.index);
  chunk.BackwardInput(1, b.grad_output, 0, &stash);
  EXPECT_EQ(stash.ResidentBytes(0, spec.index), mb0_bytes);
  chunk.Backward(0, a.grad_output, 0, &stash);
  chunk.BackwardWeight(1, &stash);
  EXPECT_EQ(stash.size(), 0u);

  const Result ra = AutogradResult(d, spec, a), rb = AutogradResult(d, spec, b);
  for (Param* p : chunk.params()) {
    EXPECT_LE(MaxRelErr(p->grad, ra.grads.at(p->name) + rb.grads.at(p->name)), kTol) << p->name;
  }
}

TEST(ChunkTest, OffloadedStashGivesIdenticalGradientsAfterReload) {
  const ModelDims d = TinyDims(true);
  const ChunkSpec spec{0, 0, 3, true, true};
  const ChunkData data = MakeData(d, spec, 4);
  const Result base = RunChunk(d, spec, data, SaveMode::kSelective, false);

  Chunk chunk(d, spec, kSeed, at::TensorOptions().dtype(at::kFloat));
  MemoryLedger ledger;
  ActivationStash stash(&ledger);
  Result r;
  r.output = chunk.Forward(0, data.input, data.targets, SaveMode::kSelective, &stash);
  const int64_t before = stash.ResidentBytes(0, spec.index);
  const int64_t moved = stash.Offload(0, spec.index, 0.5);
  EXPECT_GT(moved, 0);
  EXPECT_EQ(stash.ResidentBytes(0, spec.index), before - moved);
  EXPECT_EQ(stash.Reload(0, spec.index), moved);
  r.dinput = chunk.Backward(0, {}, data.loss_scale, &stash);
  for (Param* p : chunk.params()) r.grads[p->name] = p->grad.clone();
  ExpectIdentical(r, base);
}

TEST(ChunkTest, ChunkModeBackwardWithoutRecomputeFails) {
  const ModelDims d = TinyDims(false);
  const ChunkSpec spec{1, 1, 2, false, false};
  const ChunkData data = MakeData(d, spec, 5);
  Chunk chunk(d, spec, kSeed, at::TensorOptions().dtype(at::kFloat));
  MemoryLedger ledger;
  ActivationStash stash(&ledger);
  chunk.Forward(0, data.input, {}, SaveMode::kChunk, &stash);
  EXPECT_THROW(chunk.Backward(0, data.grad_output, 0, &stash), c10::Error);
}

// bf16 on the CPU: the same code path as a GPU's bf16, loosely checked.
TEST(ChunkTest, Bf16MatchesFp32Autograd) {
  const ModelDims d = TinyDims(true);
  const ChunkSpec spec{0, 0, 3, true, true};
  const ChunkData data = MakeData(d, spec, 6);
  const Result want = AutogradResult(d, spec, data);
  for (SaveMode mode : {SaveMode::kAll, SaveMode::kLayer}) {
    SCOPED_TRACE(ModeName(mode));
    // RunChunk also checks the stash bytes with 2-byte activations.
    const Result got = RunChunk(d, spec, data, mode, true, at::kBFloat16);
    ExpectClose(got, want, 5e-2);
  }
  Chunk chunk(d, spec, kSeed, at::TensorOptions().dtype(at::kBFloat16));
  for (Param* p : chunk.params()) {
    EXPECT_EQ(p->master.scalar_type(), at::kFloat) << p->name;
    EXPECT_EQ(p->value.scalar_type(), at::kBFloat16) << p->name;
    EXPECT_EQ(p->grad.scalar_type(), at::kFloat) << p->name;
    p->master.add_(1);
    p->SyncValue();
    EXPECT_TRUE(at::equal(p->value, p->master.to(at::kBFloat16))) << p->name;
  }
}

TEST(ChunkTest, ParamsAreNamedAndInitializedIndependentlyOfThePartition) {
  const ModelDims d = TinyDims(false);
  Chunk whole(d, {0, 0, 3, true, true}, kSeed, at::TensorOptions());
  Chunk part(d, {1, 1, 2, false, true}, kSeed, at::TensorOptions());
  std::map<std::string, Param*> by_name;
  for (Param* p : whole.params()) by_name[p->name] = p;
  EXPECT_EQ(by_name.size(), 1u + 3u * 7u + 2u);
  for (Param* p : part.params()) {
    ASSERT_TRUE(by_name.count(p->name)) << p->name;
    EXPECT_TRUE(at::equal(p->master, by_name[p->name]->master)) << p->name;
  }
  for (Param* p : whole.params()) {
    const bool gain = p->master.dim() == 1;
    EXPECT_EQ(p->weight_decay, !gain) << p->name;
    if (gain) EXPECT_TRUE(at::equal(p->master, at::ones_like(p->master)));
    EXPECT_TRUE(p->value.is_same(p->master)) << "fp32 computes on the master";
    EXPECT_EQ(p->grad.abs().sum().item<double>(), 0) << p->name;
  }
  EXPECT_EQ(whole.num_units(), 5);
  EXPECT_EQ(whole.unit_kind(0), UnitKind::kEmbedding);
  EXPECT_EQ(whole.unit_kind(1), UnitKind::kLayer);
  EXPECT_EQ(whole.unit_kind(4), UnitKind::kHead);
}

TEST(InitialParameterTest, DeterministicDistinctAndScaled) {
  const at::Tensor a = InitialParameter(7, 2, "layers.2.wqkv", {64, 64}, 0.02);
  EXPECT_TRUE(at::equal(a, InitialParameter(7, 2, "layers.2.wqkv", {64, 64}, 0.02)));
  EXPECT_FALSE(at::equal(a, InitialParameter(8, 2, "layers.2.wqkv", {64, 64}, 0.02)));
  EXPECT_FALSE(at::equal(a, InitialParameter(7, 3, "layers.2.wqkv", {64, 64}, 0.02)));
  EXPECT_FALSE(at::equal(a, InitialParameter(7, 2, "layers.2.wo", {64, 64}, 0.02)));
  EXPECT_NEAR(a.std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(a.mean().item<double>(), 0.0, 0.002);
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(InitialParameter(7, 2, "layers.2.g1", {16}, 0.02), at::ones({16})));
}

TEST(ModelDimsFromSpecTest, CopiesFieldsAndAppliesDefaults) {
  chronos::v1::JobSpec spec;
  auto* m = spec.mutable_model();
  m->set_layers(4);
  m->set_hidden(64);
  m->set_heads(4);
  m->set_ffn_hidden(172);
  m->set_vocab(256);
  m->set_seq_len(128);
  spec.mutable_training()->set_micro_batch_size(3);
  ModelDims d = ModelDimsFromSpec(spec, true);
  EXPECT_EQ(d.layers, 4);
  EXPECT_EQ(d.hidden, 64);
  EXPECT_EQ(d.heads, 4);
  EXPECT_EQ(d.ffn, 172);
  EXPECT_EQ(d.vocab, 256);
  EXPECT_EQ(d.seq_len, 128);
  EXPECT_EQ(d.micro_batch, 3);
  EXPECT_TRUE(d.flash);
  EXPECT_EQ(d.rope_theta, 10000.0);
  EXPECT_EQ(d.norm_eps, 1e-5);
  EXPECT_EQ(d.init_std, 0.02);
  m->set_rope_theta(500000);
  m->set_norm_eps(1e-6);
  m->set_init_std(0.01);
  d = ModelDimsFromSpec(spec, false);
  EXPECT_FALSE(d.flash);
  EXPECT_EQ(d.rope_theta, 500000.0);
  EXPECT_EQ(d.norm_eps, 1e-6);
  EXPECT_EQ(d.init_std, 0.01);
}

}  // namespace
}  // namespace chronos::worker
