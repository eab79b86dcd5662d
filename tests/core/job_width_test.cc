#include "core/job_width.h"

#include "gtest/gtest.h"

namespace chronos {
namespace {

v1::JobSpec FourByThree() {
  v1::JobSpec spec;
  spec.mutable_parallel()->set_pipeline(4);
  spec.mutable_parallel()->set_data(3);
  for (int l : {2, 2, 2, 2}) spec.mutable_parallel()->add_layers_per_chunk(l);
  spec.mutable_training()->set_microbatches(8);
  spec.mutable_schedule()->set_order_search_steps(1000);
  spec.mutable_schedule()->set_activation_cap_bytes(int64_t{5} << 30);
  return spec;
}

TEST(JobWidthTest, FewerReplicasRunMoreMicroBatchesSoTheGlobalBatchStays) {
  const v1::JobSpec spec = FourByThree();
  // 8 micro-batches x 3 replicas = 24 per iteration; on 2 replicas, 12 each.
  const v1::JobSpec at = SpecAtWidth(spec, 3, 2);
  EXPECT_EQ(at.parallel().pipeline(), 3);
  EXPECT_EQ(at.parallel().data(), 2);
  EXPECT_EQ(at.training().microbatches(), 12);
  EXPECT_EQ(at.parallel().layers_per_chunk_size(), 0);  // one entry per old chunk
  EXPECT_EQ(SpecAtWidth(spec, 4, 1).training().microbatches(), 24);
  // Recovery plans other widths quickly: no order search there, the cap
  // still holds.
  EXPECT_EQ(at.schedule().order_search_steps(), 0);
  EXPECT_EQ(SpecAtWidth(spec, 4, 1).schedule().order_search_steps(), 0);
  EXPECT_EQ(at.schedule().activation_cap_bytes(), int64_t{5} << 30);
}

TEST(JobWidthTest, TheSpecsOwnWidthChangesNothing) {
  const v1::JobSpec spec = FourByThree();
  for (const auto& [p, d] : {std::pair{4, 3}, std::pair{0, 0}}) {
    const v1::JobSpec at = SpecAtWidth(spec, p, d);
    EXPECT_EQ(at.parallel().pipeline(), 4);
    EXPECT_EQ(at.parallel().data(), 3);
    EXPECT_EQ(at.training().microbatches(), 8);
    EXPECT_EQ(at.parallel().layers_per_chunk_size(), 4);
    EXPECT_EQ(at.schedule().order_search_steps(), 1000);
  }
}

TEST(JobWidthTest, OnlyReplicaCountsThatDivideTheGlobalBatchKeepIt) {
  const v1::JobSpec spec = FourByThree();  // 24 micro-batches per iteration
  for (int d : {1, 2, 3, 4, 6, 8, 12, 24}) EXPECT_TRUE(KeepsGlobalBatch(spec, d)) << d;
  for (int d : {0, 5, 7, 9, 16}) EXPECT_FALSE(KeepsGlobalBatch(spec, d)) << d;
}

}  // namespace
}  // namespace chronos
