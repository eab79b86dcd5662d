// The progress tracker (coordinator/progress_tracker.h): an iteration is
// complete once every stage reported it, late iterations fill their gaps,
// checkpoints count once every worker wrote theirs; the combined record is
// checked against a hand computation.
#include "coordinator/progress_tracker.h"

#include <gtest/gtest.h>

namespace chronos::coordinator {
namespace {

v1::ProgressReport Report(int64_t iteration, double seconds = 1, int64_t tokens = 100,
                          int64_t generation = 1) {
  v1::ProgressReport r;
  r.set_iteration(iteration);
  r.mutable_device()->set_iteration_seconds(seconds);
  r.set_tokens(tokens);
  r.set_policy_generation(generation);
  return r;
}

TEST(ProgressTrackerTest, AnIterationCompletesOnceWhenEveryStageReported) {
  ProgressTracker t;
  EXPECT_FALSE(t.Add(Report(1), {0, 0}, 2));
  EXPECT_FALSE(t.Add(Report(1), {0, 0}, 2));  // the same stage again
  std::optional<ProgressTracker::Reports> done = t.Add(Report(1), {0, 1}, 2);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->size(), 2u);
  EXPECT_EQ(t.last_complete(), 1);
  EXPECT_FALSE(t.Add(Report(1), {0, 1}, 2));  // never twice
  EXPECT_FALSE(t.Add(Report(3), {0, 0}, 2));
  EXPECT_EQ(t.Newest(), 3);
}

TEST(ProgressTrackerTest, ALateIterationFillsItsGapAndTheMarkMovesOverIt) {
  ProgressTracker t(/*complete_through=*/4);
  EXPECT_FALSE(t.Add(Report(4), {0, 0}, 1));  // at or before the mark
  ASSERT_TRUE(t.Add(Report(6), {0, 0}, 1));
  EXPECT_EQ(t.last_complete(), 4);  // 5 is missing
  ASSERT_TRUE(t.Add(Report(5), {0, 0}, 1));
  EXPECT_EQ(t.last_complete(), 6);
  // A gap no report fills is given up after kMaxPartialIterations.
  for (int64_t it = 8; it <= 8 + kMaxPartialIterations; ++it) t.Add(Report(it), {0, 0}, 1);
  EXPECT_GT(t.last_complete(), 7);
}

TEST(ProgressTrackerTest, ACheckpointCountsOnceEveryWorkerWroteIt) {
  ProgressTracker t;
  const std::vector<std::string> workers = {"a", "b"};
  EXPECT_EQ(t.Checkpointed("a", 10, workers), 0);
  EXPECT_EQ(t.Checkpointed("b", 5, workers), 5);
  EXPECT_EQ(t.Checkpointed("b", 10, workers), 10);
  EXPECT_EQ(t.Checkpointed("a", 3, workers), 10);  // never backwards
  EXPECT_FALSE(t.Finished("a", 2));
  EXPECT_FALSE(t.Finished("a", 2));
  EXPECT_TRUE(t.Finished("b", 2));
}

TEST(ProgressTrackerTest, CombinedRecordAveragesLossesAndAddsReplicaTokens) {
  ProgressTracker::Reports reports;
  // Two replicas of two stages; the last stage of each holds the loss.
  reports[{0, 0}] = Report(7, 0.5, 1000, 2);
  reports[{0, 1}] = Report(7, 0.8, 1000, 3);
  reports[{1, 0}] = Report(7, 0.6, 1000, 3);
  reports[{1, 1}] = Report(7, 0.7, 1000, 3);
  reports[{0, 1}].set_loss(2.0);
  reports[{0, 1}].set_has_loss(true);
  reports[{1, 1}].set_loss(3.0);
  reports[{1, 1}].set_has_loss(true);
  reports[{0, 1}].set_lr(0.01);
  const v1::IterationRecord rec = CombineReports(reports, 7);
  EXPECT_EQ(rec.iteration(), 7);
  EXPECT_DOUBLE_EQ(rec.loss(), 2.5);
  EXPECT_DOUBLE_EQ(rec.iteration_seconds(), 0.8);         // the slowest stage
  EXPECT_DOUBLE_EQ(rec.tokens_per_second(), 2000 / 0.8);  // replicas add up
  EXPECT_DOUBLE_EQ(rec.lr(), 0.01);                       // from the first report with a loss
  ASSERT_EQ(rec.devices_size(), 4);
  EXPECT_EQ(rec.devices(3).data_rank(), 1);
  EXPECT_EQ(rec.devices(3).device(), 1);
  EXPECT_EQ(OldestGeneration(reports), 2);
}

}  // namespace
}  // namespace chronos::coordinator
