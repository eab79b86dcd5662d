// Gang admission (coordinator/admission.h) as a pure function: first come,
// first served; recovery at full width, or narrower after the grace period,
// asking for the plans it lacks before deciding.
#include "coordinator/admission.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <utility>

namespace chronos::coordinator {
namespace {

v1::JobSpec Spec(int pipeline, int data, int microbatches = 4) {
  v1::JobSpec s;
  s.mutable_parallel()->set_pipeline(pipeline);
  s.mutable_parallel()->set_data(data);
  s.mutable_training()->set_microbatches(microbatches);
  return s;
}

// A plan whose report predicts `tps` tokens per second.
SharedPlan PlanWith(double tps) {
  auto p = std::make_shared<PlannedSchedule>();
  p->report.set_tokens_per_second(tps);
  return p;
}

// Plans by (job, pipeline, data); missing keys are "not planned yet".
struct Plans {
  std::map<std::tuple<std::string, int, int>, SharedPlan> known;
  PlanLookup Lookup() const {
    return [this](const std::string& job, int p, int d) -> std::optional<SharedPlan> {
      auto it = known.find({job, p, d});
      if (it == known.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(AdmissionTest, PendingJobsStartInOrderAndALaterJobNeverOvertakes) {
  const v1::JobSpec big = Spec(4, 1), small = Spec(1, 1);
  std::vector<WaitingJob> waiting = {{"a", &small}, {"b", &big}, {"c", &small}};
  Plans plans;
  AdmissionDecision d = Admit(waiting, 3, plans.Lookup());
  ASSERT_EQ(d.starts.size(), 1u);  // b needs 4 of the 2 left; c must wait
  EXPECT_EQ(d.starts[0].job, "a");
  EXPECT_EQ(d.starts[0].pipeline, 1);
  EXPECT_EQ(d.starts[0].plan, nullptr);  // a pending job keeps its plan
  d = Admit(waiting, 6, plans.Lookup());
  ASSERT_EQ(d.starts.size(), 3u);
  EXPECT_EQ(d.starts[1].job, "b");
  EXPECT_EQ(d.starts[2].job, "c");
  EXPECT_TRUE(d.plan_job.empty());
}

TEST(AdmissionTest, RecoveryWaitsForItsBackoffThenAsksForItsFullWidthPlan) {
  const v1::JobSpec spec = Spec(2, 2);
  WaitingJob w{"r", &spec, /*recovering=*/true, /*restart_due=*/false, false};
  Plans plans;
  AdmissionDecision d = Admit({w}, 4, plans.Lookup());
  EXPECT_TRUE(d.starts.empty());
  EXPECT_TRUE(d.plan_job.empty());
  w.restart_due = true;
  d = Admit({w}, 4, plans.Lookup());
  EXPECT_TRUE(d.starts.empty());
  EXPECT_EQ(d.plan_job, "r");
  EXPECT_EQ(d.plan_widths, (std::vector<std::pair<int, int>>{{2, 2}}));
  plans.known[{"r", 2, 2}] = PlanWith(1);
  d = Admit({w}, 4, plans.Lookup());
  ASSERT_EQ(d.starts.size(), 1u);
  EXPECT_EQ(d.starts[0].pipeline, 2);
  EXPECT_EQ(d.starts[0].data, 2);
  EXPECT_EQ(d.starts[0].plan, (plans.known[{"r", 2, 2}]));
  // A full-width plan that does not fit stops admission there.
  plans.known[{"r", 2, 2}] = nullptr;
  d = Admit({w}, 4, plans.Lookup());
  EXPECT_TRUE(d.starts.empty());
  EXPECT_TRUE(d.plan_job.empty());
}

TEST(AdmissionTest, NarrowerRecoveryTakesTheFastestFittingWidthOfTheMostDevices) {
  const v1::JobSpec spec = Spec(2, 2);  // 4 devices; 3 idle after a loss
  WaitingJob w{"r", &spec, true, true, /*may_narrow=*/false};
  Plans plans;
  EXPECT_TRUE(Admit({w}, 3, plans.Lookup()).plan_job.empty());  // still waiting
  w.may_narrow = true;
  AdmissionDecision d = Admit({w}, 3, plans.Lookup());
  // Two devices is the most that keeps the global batch: (2,1) and (1,2).
  EXPECT_EQ(d.plan_job, "r");
  EXPECT_EQ(d.plan_widths, (std::vector<std::pair<int, int>>{{1, 2}, {2, 1}}));
  plans.known[{"r", 1, 2}] = PlanWith(10);
  plans.known[{"r", 2, 1}] = PlanWith(20);
  d = Admit({w}, 3, plans.Lookup());
  ASSERT_EQ(d.starts.size(), 1u);
  EXPECT_EQ(d.starts[0].pipeline, 2);
  EXPECT_EQ(d.starts[0].data, 1);
  // Neither fits: the next group (one device) is asked for.
  plans.known[{"r", 1, 2}] = nullptr;
  plans.known[{"r", 2, 1}] = nullptr;
  d = Admit({w}, 3, plans.Lookup());
  EXPECT_TRUE(d.starts.empty());
  EXPECT_EQ(d.plan_widths, (std::vector<std::pair<int, int>>{{1, 1}}));
}

TEST(AdmissionTest, NarrowerWidthsAreBoundedAndKeepTheGlobalBatch) {
  const v1::JobSpec spec = Spec(16, 8, /*microbatches=*/8);
  int total = 0;
  for (const auto& group : NarrowerWidths(spec, 127)) {
    for (const auto& [p, d] : group) {
      EXPECT_LT(p * d, 16 * 8);
      EXPECT_LE(p * d, 127);
      EXPECT_EQ((8 * 8) % d, 0) << "d = " << d << " must split the global batch";
      ++total;
    }
  }
  EXPECT_GT(total, 0);
  EXPECT_LE(total, kMaxNarrowerPlans);
}

}  // namespace
}  // namespace chronos::coordinator
