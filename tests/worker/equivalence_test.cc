// A p-stage run (StageRunners on threads over Gloo) with any schedule and a
// mix of recompute and offload gives the same per-iteration losses, and the
// same gradients after the first iteration, as the independent
// single-process autograd reference (tests/worker/reference_gpt) trained on
// the same micro-batches with the reference AdamW.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/idle_recompute.h"
#include "core/validator.h"
#include "tests/worker/pipeline_harness.h"
#include "tests/worker/reference_run.h"

namespace chronos::worker {
namespace {

using testing::TinyJob;

constexpr double kTol = 1e-5;

struct Case {
  std::string kind;
  int p;
  int v;
  int m;
  int d = 1;
  // Chronos's other orders the planner may pick: 1 the block with slotted
  // BWs (a BW may run periods after its BI), 2 the list order, 3 the
  // default block refined by the order search (actions moved one by one),
  // 4 the building-block V, 5 the default block with every RECOMPUTE moved
  // into the earliest wait after its F.
  int order = 0;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  const char* order[] = {"", "_slotted", "_list", "_searched", "_vblock", "_idle_recompute"};
  return c.kind + "_p" + std::to_string(c.p) + "_v" + std::to_string(c.v) + "_m" +
         std::to_string(c.m) + "_d" + std::to_string(c.d) + order[c.order];
}

class EquivalenceTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { at::set_num_threads(1); }
};

TEST_P(EquivalenceTest, LossesAndGradientsMatchSingleProcessReference) {
  const Case& c = GetParam();
  TinyJob job;
  job.pipeline = c.p;
  job.data = c.d;
  job.microbatches = c.m;
  job.data_path = testing::AnyTextCorpus();
  const int C = c.p * c.v;
  // Uneven chunks: one or two layers each (the reference sees one model).
  std::vector<int> layers(C);
  job.layers = 0;
  for (int i = 0; i < C; ++i) {
    layers[i] = 1 + (i % 2);
    job.layers += layers[i];
  }
  const v1::JobSpec spec = testing::MakeSpec(job, c.kind, c.v, layers);
  BlockTuning tuning;
  tuning.glue_weights = c.order == 1;
  tuning.slot_weights = c.order == 1;
  tuning.greedy = c.order == 2;
  if (c.order == 4) {  // the building-block V squeezed under 1F1B's memory
    tuning.v_block = 2;
    tuning.squeeze_limit = 2 * c.p;
  }
  OrderSearchOptions search;
  if (c.order == 3) search.steps = 20'000;
  auto schedule = testing::BuildSchedule(spec, c.kind, c.v, layers, testing::MixedPolicy(C, c.m),
                                         tuning, search);
  ASSERT_TRUE(schedule.ok()) << schedule.status();
  if (c.order == 5) {
    // Every RECOMPUTE as far back as it may go: in front of the earliest
    // wait after its F (core/idle_recompute.h).
    int moved = 0;
    for (int d = 0; d < c.p; ++d) {
      for (int i = 0; i < static_cast<int>(schedule->devices[d].size()); ++i) {
        const std::vector<int> slots = IdleRecomputeSlots(*schedule, d, i);
        if (slots.empty()) continue;
        MoveActionBefore(&*schedule, d, i, slots.back());
        ++moved;
      }
    }
    ASSERT_GT(moved, 0);
    ASSERT_TRUE(ValidateSchedule(*schedule).ok()) << ValidateSchedule(*schedule);
  }
  if (c.order != 0) {
    auto plain = testing::BuildSchedule(spec, c.kind, c.v, layers, testing::MixedPolicy(C, c.m));
    ASSERT_TRUE(plain.ok()) << plain.status();
    ASSERT_NE(schedule->devices, plain->devices) << "the order under test is the default one";
  }

  testing::PipelineRun run;
  run.spec = spec;
  run.schedule = *schedule;
  run.capture_first_grads = true;
  const std::vector<testing::RankOutcome> ranks = testing::RunPipeline(run);
  for (const auto& r : ranks) {
    ASSERT_TRUE(r.status.ok()) << "device " << r.device << " replica " << r.data_rank << ": "
                               << r.status;
    ASSERT_EQ(r.reports.size(), static_cast<size_t>(job.iterations));
  }

  const testing::Reference ref = testing::RunReference(spec, job);
  const std::vector<double> losses = testing::ReplicaMeanLosses(ranks);
  ASSERT_EQ(losses.size(), ref.losses.size());
  for (size_t i = 0; i < losses.size(); ++i) {
    EXPECT_NEAR(losses[i], ref.losses[i], kTol * std::abs(ref.losses[i])) << "iteration " << i + 1;
  }

  // Every parameter's gradient, from whichever device (and every replica:
  // after ALLREDUCE they all hold the global gradient).
  size_t seen = 0;
  for (const auto& r : ranks) {
    for (const auto& [name, grad] : r.first_grads) {
      ASSERT_TRUE(ref.first_grads.count(name)) << name;
      const at::Tensor want = ref.first_grads.at(name).to(at::kDouble);
      const double scale = want.norm().item<double>();
      const double err =
          (grad.to(at::kDouble) - want).norm().item<double>() / std::max(scale, 1e-30);
      EXPECT_LT(err, kTol) << name << " on device " << r.device << " replica " << r.data_rank;
      if (r.data_rank == 0) ++seen;
    }
  }
  EXPECT_EQ(seen, ref.first_grads.size());
}

INSTANTIATE_TEST_SUITE_P(
    Schedules, EquivalenceTest,
    ::testing::Values(
        Case{"1f1b", 2, 1, 4}, Case{"interleaved", 2, 2, 4}, Case{"chronos", 2, 2, 4},
        Case{"zbh1", 2, 1, 4}, Case{"gpipe", 2, 1, 2}, Case{"1f1b", 4, 1, 4},
        Case{"interleaved", 4, 2, 8}, Case{"chronos", 4, 2, 8}, Case{"chronos", 2, 2, 4, /*d=*/2},
        Case{"chronos", 2, 4, 4}, Case{"chronos", 4, 4, 8},
        Case{"chronos", 4, 2, 8, 1, /*order=*/1}, Case{"chronos", 3, 2, 7, 1, /*order=*/1},
        Case{"chronos", 4, 2, 8, 1, /*order=*/2}, Case{"chronos", 4, 4, 8, 1, /*order=*/3},
        Case{"chronos", 3, 2, 7, 1, /*order=*/3}, Case{"zbh1", 4, 1, 6}, Case{"vmin", 4, 2, 8},
        Case{"vhalf", 4, 2, 8}, Case{"vhalf", 3, 2, 5}, Case{"vzb", 4, 2, 8},
        Case{"chronos", 4, 2, 8, 1, /*order=*/4}, Case{"chronos", 4, 2, 8, 1, /*order=*/5},
        Case{"1f1b", 4, 1, 8, 1, /*order=*/5}),
    CaseName);

}  // namespace
}  // namespace chronos::worker
