// The stash/ledger contract, end to end: on the synchronous "cpu" profile
// the simulator's per-device peak of resident activation bytes (and of
// offloaded bytes) equals, to the byte, what the worker's ledger measures
// while the executor runs the same schedule.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/simulator.h"
#include "tests/worker/pipeline_harness.h"

namespace chronos::worker {
namespace {

using testing::TinyJob;

struct Case {
  std::string name;
  std::string kind;
  int p;
  int v;
  int m;
  // Which policy table: "keep", "mixed", "offload", "recompute-chunk".
  std::string policy;
};

PolicyTable MakePolicy(const std::string& name, int C, int m) {
  PolicyTable t(C, std::vector<MemoryPolicy>(m, MemoryPolicy::Keep()));
  if (name == "mixed") return testing::MixedPolicy(C, m);
  for (int c = 0; c < C; ++c) {
    for (int mb = 0; mb < m; ++mb) {
      if (name == "offload") t[c][mb] = MemoryPolicy::Offload(c % 2 ? 0.5 : 1.0);
      if (name == "recompute-chunk") t[c][mb] = MemoryPolicy::Recompute(Granularity::kChunk);
      if (name == "recompute-early" && c < C / 2)
        t[c][mb] = MemoryPolicy::Recompute(mb % 2 ? Granularity::kSelective : Granularity::kLayer);
    }
  }
  return t;
}

class LedgerVsSimulatorTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { at::set_num_threads(1); }
};

TEST_P(LedgerVsSimulatorTest, PeakActivationBytesEqualSimulatorExactly) {
  const Case& c = GetParam();
  TinyJob job;
  job.pipeline = c.p;
  job.microbatches = c.m;
  job.iterations = 2;
  job.data_path = testing::AnyTextCorpus();
  const int C = c.p * c.v;
  std::vector<int> layers(C, 1);
  layers[0] = 2;  // uneven, so devices differ
  job.layers = C + 1;
  const v1::JobSpec spec = testing::MakeSpec(job, c.kind, c.v, layers);
  auto schedule = testing::BuildSchedule(spec, c.kind, c.v, layers, MakePolicy(c.policy, C, c.m));
  ASSERT_TRUE(schedule.ok()) << schedule.status();

  // Same ModelShape as the worker: fp32 (act_bytes 4), no flash, micro-batch b.
  const CostModel costs = testing::CpuCostModel(spec, layers);
  ASSERT_EQ(costs.shape().act_bytes, 4);
  ASSERT_FALSE(costs.shape().flash);
  ASSERT_EQ(costs.shape().micro_batch, job.micro_batch);
  auto sim = Simulate(*schedule, costs);
  ASSERT_TRUE(sim.ok()) << sim.status();

  testing::PipelineRun run;
  run.spec = spec;
  run.schedule = *schedule;
  const auto ranks = testing::RunPipeline(run);
  for (const auto& r : ranks) {
    ASSERT_TRUE(r.status.ok()) << "device " << r.device << ": " << r.status;
    ASSERT_EQ(r.reports.size(), 2u);
    const DeviceSimResult& want = sim->devices[r.device];
    EXPECT_GT(want.peak_activation_bytes, 0);
    for (const v1::ProgressReport& rep : r.reports) {
      EXPECT_EQ(rep.device().peak_activation_bytes(), want.peak_activation_bytes)
          << "device " << r.device << " iteration " << rep.iteration();
      EXPECT_EQ(rep.device().peak_offloaded_bytes(), want.peak_offloaded_bytes)
          << "device " << r.device << " iteration " << rep.iteration();
      EXPECT_EQ(rep.device().resident_activation_bytes(), 0);
      EXPECT_EQ(rep.device().offload_copied_bytes(), rep.device().reload_copied_bytes());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Schedules, LedgerVsSimulatorTest,
    ::testing::Values(Case{"OneFOneBKeep", "1f1b", 2, 1, 4, "keep"},
                      Case{"OneFOneBMixed", "1f1b", 4, 1, 6, "mixed"},
                      Case{"GpipeOffload", "gpipe", 2, 1, 3, "offload"},
                      Case{"InterleavedRecomputeChunk", "interleaved", 2, 2, 4, "recompute-chunk"},
                      Case{"ZbH1Mixed", "zbh1", 2, 1, 4, "mixed"},
                      Case{"ChronosKeep", "chronos", 4, 2, 8, "keep"},
                      Case{"ChronosRecomputeEarly", "chronos", 2, 2, 6, "recompute-early"},
                      Case{"ChronosMixed", "chronos", 4, 2, 8, "mixed"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace chronos::worker
