// GPU tests (ctest label "gpu"): the GPU runtime end to end on cuda:0. Each
// test skips, saying why, where this process sees no CUDA device, so the
// binary runs everywhere the GPU build does.
//
// Tolerances against the fp32 CPU reference, for bf16 compute: bf16 keeps 8
// significant bits (unit roundoff 2^-9, about 0.2 %), and a layer rounds its
// activations and matrix-product inputs to bf16 about ten times; over a few
// layers those errors add up to roughly 1 % of a loss or a gradient. The
// bounds (2 % on each iteration's loss, 5 % relative L2 error on each
// parameter's first-iteration gradient) leave that room twice over, while a
// wrong gradient (a sign, a missing term, another micro-batch's data) is off
// by tens of percent or more.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/job_spec.h"
#include "tests/worker/pipeline_harness.h"
#include "tests/worker/reference_run.h"
#include "worker/cuda/cuda_runtime.h"
#include "worker/stage_emulation.h"

namespace chronos::worker {
namespace {

using testing::TinyJob;

constexpr double kLossTol = 2e-2;
constexpr double kGradTol = 5e-2;

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) {
      GTEST_SKIP() << "no CUDA device visible to this process (CPU machine, "
                      "or CUDA_VISIBLE_DEVICES empty): GPU tests need one";
    }
  }
};

testing::PipelineRun GpuRun(const TinyJob& job, const PolicyTable& policy, v1::JobSpec* spec_out) {
  const std::vector<int> layers(job.pipeline, job.layers / job.pipeline);
  v1::JobSpec spec = testing::MakeSpec(job, "1f1b", 1, layers);
  spec.mutable_training()->set_precision(v1::PRECISION_BF16);
  auto s = testing::BuildSchedule(spec, "1f1b", 1, layers, policy);
  EXPECT_TRUE(s.ok()) << s.status();
  testing::PipelineRun run;
  run.spec = spec;
  run.schedule = *s;
  run.device_name = "cuda:0";
  run.make_runtime = [] {
    CudaRuntimeOptions o;
    o.device = 0;
    o.pinned_pool_bytes = int64_t{1} << 30;
    return NewCudaRuntime(o);
  };
  *spec_out = spec;
  return run;
}

TEST_F(GpuTest, TwoStagesOnOneGpuMatchTheSingleProcessReference) {
  TinyJob job;
  job.data_path = testing::AnyTextCorpus();
  v1::JobSpec spec;
  testing::PipelineRun run =
      GpuRun(job, testing::MixedPolicy(job.pipeline, job.microbatches), &spec);
  run.capture_first_grads = true;
  const auto ranks = testing::RunPipeline(run);
  for (const auto& r : ranks) ASSERT_TRUE(r.status.ok()) << r.status;
  const testing::Reference ref = testing::RunReference(spec, job);
  const std::vector<double> losses = testing::ReplicaMeanLosses(ranks);
  ASSERT_EQ(losses.size(), ref.losses.size());
  for (size_t i = 0; i < losses.size(); ++i) {
    EXPECT_NEAR(losses[i], ref.losses[i], kLossTol * std::abs(ref.losses[i]))
        << "iteration " << i + 1;
  }
  size_t seen = 0;
  for (const auto& r : ranks) {
    for (const auto& [name, grad] : r.first_grads) {
      ASSERT_TRUE(ref.first_grads.count(name)) << name;
      const at::Tensor want = ref.first_grads.at(name).to(at::kDouble);
      const at::Tensor got = grad.to(at::kCPU).to(at::kDouble);
      const double err = (got - want).norm().item<double>() / want.norm().item<double>();
      EXPECT_LE(err, kGradTol) << name;
      ++seen;
    }
  }
  EXPECT_EQ(seen, ref.first_grads.size());
}

TEST_F(GpuTest, OffloadOnAndOffGiveEqualLosses) {
  TinyJob job;
  job.data_path = testing::AnyTextCorpus();
  v1::JobSpec spec;
  const auto kept = testing::RunPipeline(GpuRun(job, {}, &spec));
  const auto moved = testing::RunPipeline(
      GpuRun(job, testing::MixedPolicy(job.pipeline, job.microbatches), &spec));
  const std::vector<double> a = testing::ReplicaMeanLosses(kept);
  const std::vector<double> b = testing::ReplicaMeanLosses(moved);
  ASSERT_EQ(a.size(), static_cast<size_t>(job.iterations));
  ASSERT_EQ(a.size(), b.size());
  int64_t offloaded = 0;
  for (const auto& r : moved) {
    for (const auto& rep : r.reports) offloaded += rep.device().offload_copied_bytes();
  }
  ASSERT_GT(offloaded, 0) << "the mixed policy must offload";
  // Offload and recompute change where bytes live, not the arithmetic; the
  // bound allows only for kernels that are not bit-reproducible.
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i], b[i], 1e-6 * std::abs(a[i])) << "iteration " << i + 1;
  }
}

TEST_F(GpuTest, AllocatorPeakIsWithinTenPercentOfThePlannersPrediction) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecYaml(
      absl::StrCat("name: gpu-peak\n"
                   "model: {layers: 8, hidden: 1024, heads: 8, ffn_hidden: 2816, "
                   "vocab: 256, seq_len: 1024}\n"
                   "data: {path: ",
                   testing::AnyTextCorpus(),
                   ", format: text}\n"
                   "training: {iterations: 3, micro_batch_size: 1, microbatches: 8, "
                   "lr: 1.0e-4, precision: bf16}\n"
                   "parallel: {pipeline: 2}\n"
                   "schedule: {kind: chronos}\n"
                   "device: {profile: h100}\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  StageEmulationOptions o;
  o.device = "cuda:0";
  o.warmup_iterations = 1;
  o.iterations = 2;
  absl::StatusOr<StageEmulationReport> r = EmulateStages(*spec, o);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const StageEmulationRow& row : r->rows) {
    EXPECT_NEAR(static_cast<double>(row.hbm_peak_bytes),
                static_cast<double>(row.predicted_peak_bytes),
                0.10 * static_cast<double>(row.predicted_peak_bytes))
        << "stage " << row.stage;
  }
}

}  // namespace
}  // namespace chronos::worker
