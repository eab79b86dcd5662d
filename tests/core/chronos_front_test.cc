// Chronos-Pipe against the published V schedules, with the planner's real
// cost model (the LLaMA layer of BENCHMARKS.md on the h100 profile) and on
// uniform costs: its orders reach V-Min's and V-Half's points on their own,
// and with offload it holds V-Min's activation memory at V-Half's speed.
#include <algorithm>
#include <string>

#include "bench/llama_spec.h"
#include "core/device_profile.h"
#include "core/generate.h"
#include "core/job_spec.h"
#include "core/job_spec_validation.h"
#include "core/order_search.h"
#include "core/planner.h"
#include "core/simulator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/schedule_test_util.h"

namespace chronos {
namespace {

using ::chronos::testing::Build;
using ::chronos::testing::UniformCosts;
using ::testing::HasSubstr;

v1::JobSpec Llama(int p, int m, int layers) {
  v1::JobSpec spec = LlamaBenchSpec(p, m, layers);
  spec.mutable_memory()->set_hbm_budget_bytes(int64_t{72} << 30);
  return spec;
}

v1::DeviceProfile H100() { return *BuiltinDeviceProfile("h100"); }

int64_t WorstActivations(const PlannedSchedule& ps) {
  int64_t w = 0;
  for (const auto& d : ps.sim.devices) w = std::max(w, d.peak_activation_bytes);
  return w;
}

PlannedSchedule MustPlan(const v1::JobSpec& spec, const std::string& variant,
                         const PlanOptions& options = {}) {
  absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), variant, options);
  EXPECT_TRUE(ps.ok()) << variant << ": " << ps.status();
  return ps.ok() ? *std::move(ps) : PlannedSchedule{};
}

TEST(ChronosFrontTest, OnUniformCostsTheVBlocksReachVMinAndVHalf) {
  for (int p : {4, 6, 8, 16}) {
    for (int m : {2 * p, 4 * p}) {
      auto cm = UniformCosts(2 * p, 1.0, 1.0, 1.0);
      for (int block : {1, 2}) {
        ShapeSpec chronos = ScheduleShape("chronos", p, 2, m, *cm);
        chronos.block.v_block = block;
        const std::string peer = block == 1 ? "vmin" : "vhalf";
        Schedule c = Build(chronos, *cm);
        Schedule v = Build(ScheduleShape(peer, p, 2, m, *cm), *cm);
        absl::StatusOr<SimResult> rc = Simulate(c, *cm), rv = Simulate(v, *cm);
        ASSERT_TRUE(rc.ok() && rv.ok());
        int64_t ac = 0, av = 0;
        for (int d = 0; d < p; ++d) {
          ac = std::max(ac, rc->devices[d].peak_activation_bytes);
          av = std::max(av, rv->devices[d].peak_activation_bytes);
        }
        EXPECT_LE(rc->bubble_ratio, rv->bubble_ratio + 1e-12) << peer << " p=" << p << " m=" << m;
        EXPECT_LE(ac, av) << peer << " p=" << p << " m=" << m;
      }
    }
  }
}

TEST(ChronosFrontTest, UnderLlamaCostsThePlannerComparesOrdersOnBothPeersPoints) {
  for (int p : {4, 8}) {
    const int m = 4 * p;
    const v1::JobSpec spec = Llama(p, m, 8 * p);
    PlannedSchedule chronos = MustPlan(spec, "chronos+plain");
    for (const std::string peer : {"vmin", "vhalf"}) {
      PlannedSchedule v = MustPlan(spec, peer + "+plain");
      const int64_t v_act = WorstActivations(v);
      bool dominated = false;
      for (const v1::OrderCandidate& c : chronos.report.candidates()) {
        if (c.bubble_ratio() <= v.sim.bubble_ratio + 1e-12 && c.kept_activation_bytes() > 0 &&
            c.kept_activation_bytes() <= v_act) {
          dominated = true;
        }
      }
      EXPECT_TRUE(dominated) << "no chronos order at or under " << peer << "'s bubble "
                             << v.sim.bubble_ratio << " and activations " << v_act << ", p=" << p;
    }
  }
}

TEST(ChronosFrontTest, WithOffloadChronosHoldsVMinsMemoryAtVHalfsSpeed) {
  // HBM as a cache: no more activations in HBM than V-Min holds, the rest
  // hidden in host memory, no slower than V-Half keeping everything.
  for (int p : {8, 16}) {
    const int m = 4 * p;
    v1::JobSpec spec = Llama(p, m, 8 * p);
    const PlannedSchedule vmin = MustPlan(spec, "vmin+plain");
    const PlannedSchedule vhalf = MustPlan(spec, "vhalf+plain");
    // V-Half needs more than V-Min's memory for its speed.
    ASSERT_GT(WorstActivations(vhalf), WorstActivations(vmin));
    spec.mutable_memory()->set_activation_budget_bytes(WorstActivations(vmin));
    const PlannedSchedule chronos = MustPlan(spec, "chronos");
    ASSERT_TRUE(chronos.fits) << chronos.report.DebugString();
    EXPECT_LE(WorstActivations(chronos), WorstActivations(vmin)) << "p=" << p;
    EXPECT_LE(chronos.sim.iteration_seconds, vhalf.sim.iteration_seconds * (1 + 1e-9)) << "p=" << p;
  }
}

TEST(ChronosFrontTest, RelativeActivationBudgetIsAMultipleOfOneFOneBsWorstDevice) {
  v1::JobSpec spec = Llama(8, 32, 64);
  const int64_t one = WorstActivations(MustPlan(spec, "1f1b+plain"));
  spec.mutable_memory()->set_activation_budget_ratio(0.5);
  const PlannedSchedule chronos = MustPlan(spec, "chronos");
  ASSERT_TRUE(chronos.fits) << chronos.report.DebugString();
  EXPECT_EQ(chronos.activation_budget_bytes, one / 2);
  EXPECT_LE(WorstActivations(chronos), one / 2);
  // Without the budget the planner keeps more than that.
  spec.mutable_memory()->clear_activation_budget_ratio();
  EXPECT_GT(WorstActivations(MustPlan(spec, "chronos")), one / 2);
}

TEST(ChronosFrontTest, RelativeActivationCapBindsEveryOrderAgainstOneFOneB) {
  v1::JobSpec spec = Llama(8, 32, 64);
  const int64_t one = WorstActivations(MustPlan(spec, "1f1b+plain"));
  spec.mutable_schedule()->set_activation_cap_ratio(0.6);
  const PlannedSchedule chronos = MustPlan(spec, "chronos+plain");
  int compared = 0;
  for (const v1::OrderCandidate& c : chronos.report.candidates()) {
    if (!c.error().empty()) continue;
    ++compared;
    EXPECT_LE(c.kept_activation_bytes(), static_cast<int64_t>(0.6 * one)) << c.order();
  }
  EXPECT_GT(compared, 0);
  // A cap no order meets names the field and the resolved size.
  spec.mutable_schedule()->set_activation_cap_ratio(0.05);
  absl::StatusOr<PlannedSchedule> none = PlanSchedule(spec, H100(), "chronos+plain");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(none.status().message(), HasSubstr("schedule.activation_cap"));
}

TEST(RelativeSizeTest, ParsesMultiplesOfOneFOneBAndRefusesBadOnes) {
  absl::StatusOr<v1::JobSpec> ok =
      ParseJobSpecYaml("schedule: {activation_cap: 0.5x}\nmemory: {activation_budget: 0.25X}\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_DOUBLE_EQ(ok->schedule().activation_cap_ratio(), 0.5);
  EXPECT_EQ(ok->schedule().activation_cap_bytes(), 0);
  EXPECT_DOUBLE_EQ(ok->memory().activation_budget_ratio(), 0.25);
  absl::StatusOr<v1::JobSpec> bytes = ParseJobSpecYaml("memory: {activation_budget: 12GiB}\n");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(bytes->memory().activation_budget_bytes(), int64_t{12} << 30);
  for (const char* bad : {"schedule: {activation_cap: 0.5y}", "schedule: {activation_cap: -1x}",
                          "schedule: {activation_cap: nanx}", "memory: {activation_budget: x}"}) {
    absl::StatusOr<v1::JobSpec> s = ParseJobSpecYaml(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_THAT(s.status().message(), ::testing::AnyOf(HasSubstr("schedule.activation_cap"),
                                                       HasSubstr("memory.activation_budget")))
        << bad << ": " << s.status();
  }
  v1::JobSpec both = Llama(4, 8, 16);
  both.mutable_training()->set_lr(1e-3);
  both.mutable_training()->set_iterations(1);
  both.mutable_data()->set_path("/tmp/x");
  both.mutable_schedule()->set_activation_cap_ratio(0.5);
  both.mutable_schedule()->set_activation_cap_bytes(1 << 30);
  absl::Status st = ValidateJobSpec(both);
  EXPECT_THAT(st.message(), HasSubstr("schedule.activation_cap is given both")) << st;
  both.mutable_schedule()->clear_activation_cap_bytes();
  both.mutable_schedule()->set_activation_cap_ratio(100);
  st = ValidateJobSpec(both);
  EXPECT_THAT(st.message(), HasSubstr("schedule.activation_cap must be a multiple")) << st;
}

}  // namespace
}  // namespace chronos
