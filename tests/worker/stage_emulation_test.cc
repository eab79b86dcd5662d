// Stage emulation (worker/stage_emulation.h) against the planner, on the
// "cpu" profile: copies are synchronous there, so each emulated stage's
// ledger peak must equal the simulator's peak for that device exactly.
#include "worker/stage_emulation.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

#include "core/job_spec.h"
#include "tests/worker/pipeline_harness.h"

namespace chronos::worker {
namespace {

v1::JobSpec Spec(const std::string& kind, double offload_ratio) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecYaml(
      absl::StrCat("name: emu\n"
                   "model: {layers: 8, hidden: 32, heads: 4, ffn_hidden: 64, vocab: 256, "
                   "seq_len: 16}\n"
                   "data: {path: ",
                   testing::AnyTextCorpus(),
                   ", format: text}\n"
                   "training: {iterations: 2, micro_batch_size: 2, microbatches: 8, "
                   "lr: 1.0e-3, seed: 3, precision: fp32}\n"
                   "parallel: {pipeline: 4, data: 2}\n"
                   "schedule: {kind: ",
                   kind,
                   "}\n"
                   "memory: {offload_ratio: ",
                   offload_ratio,
                   "}\n"
                   "device: {profile: cpu}\n"));
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

TEST(StageEmulationTest, EveryStagesLedgerPeakIsThePlannersPrediction) {
  for (const char* kind : {"1f1b", "chronos"}) {
    for (double ratio : {0.0, 0.5}) {
      StageEmulationOptions o;
      o.warmup_iterations = 1;
      o.iterations = 1;
      o.threads = 1;
      absl::StatusOr<StageEmulationReport> r = EmulateStages(Spec(kind, ratio), o);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->pipeline, 4);
      ASSERT_EQ(r->rows.size(), 4u);
      int64_t offloaded = 0;
      for (const StageEmulationRow& row : r->rows) {
        SCOPED_TRACE(absl::StrCat(kind, " ratio ", ratio, " stage ", row.stage));
        EXPECT_GT(row.peak_activation_bytes, 0);
        EXPECT_EQ(row.peak_activation_bytes, row.predicted_peak_activation_bytes);
        EXPECT_GT(row.median_seconds, 0);
        EXPECT_GT(row.predicted_busy_seconds, 0);
        EXPECT_EQ(row.hbm_peak_bytes, 0);  // no allocator figures on CPU
        offloaded += row.offloaded_bytes;
      }
      // The ratio reaches the stages: offload moves bytes only when asked.
      if (ratio == 0.0) {
        EXPECT_EQ(offloaded, 0);
      } else {
        EXPECT_GT(offloaded, 0);
      }
    }
  }
}

TEST(StageEmulationTest, OneStageAndBadOptionsAreNamed) {
  StageEmulationOptions o;
  o.iterations = 1;
  o.warmup_iterations = 0;
  o.threads = 1;
  o.stage = 2;
  absl::StatusOr<StageEmulationReport> r = EmulateStages(Spec("1f1b", 0), o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0].stage, 2);

  o.stage = 4;
  r = EmulateStages(Spec("1f1b", 0), o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("--stage 4"), std::string::npos);

  o.stage = -1;
  o.device = "tpu:0";
  r = EmulateStages(Spec("1f1b", 0), o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("--device"), std::string::npos);
}

}  // namespace
}  // namespace chronos::worker
