#include "core/cost_model.h"

#include <numeric>

#include "core/device_profile.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/schedule_test_util.h"

namespace chronos {
namespace {

using ::chronos::testing::Llama7B;
using ::testing::HasSubstr;

TEST(CostModelTest, ParameterCountsMatchTheLlamaFormula) {
  const ModelShape m = Llama7B();
  const int64_t h = 4096, f = 11008, V = 32000;
  EXPECT_EQ(m.LayerParams(), 4 * h * h + 3 * h * f + 2 * h);
  EXPECT_EQ(m.EmbeddingParams(), V * h);
  EXPECT_EQ(m.HeadParams(), V * h + h);
  // LLaMA-7B: 6.74e9 parameters.
  const int64_t total = 32 * m.LayerParams() + m.EmbeddingParams() + m.HeadParams();
  EXPECT_NEAR(static_cast<double>(total), 6.74e9, 0.01e9);
}

TEST(CostModelTest, LayerFlopsAreSixTimesParamsPerTokenPlusAttention) {
  const ModelShape m = Llama7B();
  CostModel cm(m, *BuiltinDeviceProfile("h100"), std::vector<int>{32});
  const ChunkCost& c = cm.chunk(0);
  ASSERT_TRUE(c.has_embedding && c.has_head);
  const UnitCost* layer = nullptr;
  for (const UnitCost& u : c.units) {
    if (u.kind == UnitKind::kLayer) layer = &u;
  }
  ASSERT_NE(layer, nullptr);
  const double s = 4096, h = 4096;
  // Matrix products: 2 * params * tokens forward; causal attention scores
  // and values: 2 * 2 * s^2 * h / 2 (half of the square is masked out) ...
  const double dense = 2.0 * (4 * h * h + 3 * h * 11008) * s;
  EXPECT_GE(layer->forward_flops, dense);
  EXPECT_LE(layer->forward_flops, dense + 4.0 * s * s * h);
  // ... and the backward is twice the forward, split evenly between
  // inputs and weights for the dense part.
  const double backward = layer->backward_input_flops + layer->backward_weight_flops;
  EXPECT_GE(backward, 2 * layer->forward_flops) << layer->forward_flops;
  EXPECT_LE(backward, 2.5 * layer->forward_flops) << layer->forward_flops;
  EXPECT_NEAR(layer->backward_weight_flops, dense, 0.01 * dense);
}

TEST(CostModelTest, FlashAttentionDropsTheScoreMatrixFromTheStash) {
  ModelShape flash = Llama7B();
  ModelShape plain = flash;
  plain.flash = false;
  const auto profile = *BuiltinDeviceProfile("h100");
  CostModel a(flash, profile, std::vector<int>{32});
  CostModel b(plain, profile, std::vector<int>{32});
  // Per layer, plain attention keeps the probabilities (heads x s x s in
  // bf16); flash keeps the log-sum-exp (heads x s in fp32) instead.
  const int64_t probs = int64_t{32} * 4096 * 4096 * 2;
  const int64_t lse = int64_t{32} * 4096 * 4;
  const int64_t diff = b.KeptBytes(0, SaveMode::kAll) - a.KeptBytes(0, SaveMode::kAll);
  EXPECT_EQ(diff, 32 * (probs - lse));
  // Selective recomputation drops the attention internals again, so it
  // keeps less than everything and more than the layer input only.
  EXPECT_LT(b.KeptBytes(0, SaveMode::kSelective), b.KeptBytes(0, SaveMode::kAll));
  EXPECT_GT(b.KeptBytes(0, SaveMode::kSelective), b.KeptBytes(0, SaveMode::kLayer));
  // Layer granularity keeps one b*s*h input per layer.
  EXPECT_GE(a.KeptBytes(0, SaveMode::kLayer), 32 * int64_t{4096} * 4096 * 2);
}

TEST(CostModelTest, OptimizerAndGradientBytesFollowThePrecision) {
  const ModelShape m = Llama7B();
  CostModel cm(m, *BuiltinDeviceProfile("h100"), std::vector<int>{32});
  const int64_t params = cm.chunk(0).params;
  EXPECT_EQ(cm.chunk(0).weight_bytes, 2 * params);      // bf16 compute copy
  EXPECT_EQ(cm.chunk(0).gradient_bytes, 4 * params);    // fp32 accumulation
  EXPECT_EQ(cm.chunk(0).optimizer_bytes, 12 * params);  // master + 2 moments
}

TEST(PartitionTest, EveryLayerPlacedAndEndsCarryTheEmbeddingAndHead) {
  ModelShape m = Llama7B();
  for (int layers : {8, 17, 31, 64}) {
    m.layers = layers;
    for (int chunks : {2, 4, 8}) {
      if (chunks > layers) continue;
      absl::StatusOr<std::vector<int>> part = PartitionLayers(m, chunks, {});
      ASSERT_TRUE(part.ok()) << part.status();
      ASSERT_EQ(part->size(), static_cast<size_t>(chunks));
      EXPECT_EQ(std::accumulate(part->begin(), part->end(), 0), layers);
      const int inner_max = *std::max_element(part->begin() + 1, part->end() - 1 + (chunks == 2));
      // The ends pay for the embedding (and the 32000-wide head), so they
      // never get more layers than the middle.
      if (chunks > 2) EXPECT_LE(part->back(), inner_max) << layers << "/" << chunks;
    }
  }
}

TEST(PartitionTest, ExplicitLayoutIsCheckedAgainstTheModel) {
  ModelShape m = Llama7B();
  m.layers = 8;
  EXPECT_EQ(*PartitionLayers(m, 4, {1, 3, 3, 1}), (std::vector<int>{1, 3, 3, 1}));
  absl::StatusOr<std::vector<int>> bad = PartitionLayers(m, 4, {2, 2, 2, 1});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("layers_per_chunk"));
  bad = PartitionLayers(m, 4, {2, 2, 4});
  EXPECT_THAT(bad.status().message(), HasSubstr("layers_per_chunk"));
}

TEST(DeviceProfileTest, H100FiguresComeFromTheMeasuredDevice) {
  const auto p = *BuiltinDeviceProfile("h100");
  EXPECT_DOUBLE_EQ(p.peak_flops(), 989e12);
  EXPECT_GT(p.hbm_bytes(), int64_t{79} << 30);
  EXPECT_GT(p.duplex_bandwidth(), p.h2d_bandwidth());
  EXPECT_FALSE(BuiltinDeviceProfile("tpu").ok());
}

}  // namespace
}  // namespace chronos
