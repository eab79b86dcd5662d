// The progress tracker (coordinator/progress_tracker.h): an iteration is
// complete once every stage reported it and its record is stored; each
// stage's reports are taken in order, so a report past a lost one is
// refused with the iteration to send again from; checkpoints count once
// every worker wrote theirs; the combined record is checked against a hand
// computation.
#include "coordinator/progress_tracker.h"

#include <gtest/gtest.h>

#include "rpc/progress_window.h"

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
  EXPECT_TRUE(t.Add(Report(1), {0, 0}).taken);
  ProgressTracker::Added again = t.Add(Report(1), {0, 0});  // the same stage again
  EXPECT_TRUE(again.taken);
  EXPECT_EQ(again.next_iteration, 2);
  EXPECT_EQ(t.CompleteThrough(2), 0);
  EXPECT_TRUE(t.Add(Report(1), {0, 1}).taken);
  ASSERT_EQ(t.CompleteThrough(2), 1);
  EXPECT_EQ(t.Ready(1).size(), 2u);
  // Not complete until its record is stored (the caller says so).
  EXPECT_EQ(t.last_complete(), 0);
  t.MarkComplete(1);
  EXPECT_EQ(t.last_complete(), 1);
  EXPECT_EQ(t.CompleteThrough(2), 1);  // never twice
  ProgressTracker::Added dup = t.Add(Report(1), {0, 1});
  EXPECT_TRUE(dup.taken);
  EXPECT_EQ(dup.next_iteration, 2);
  EXPECT_EQ(t.CompleteThrough(2), 1);
  EXPECT_TRUE(t.Add(Report(2), {0, 0}).taken);
  EXPECT_EQ(t.Newest(), 2);
}

TEST(ProgressTrackerTest, AReportPastAMissingOneIsNotTakenAndNamesTheMissingOne) {
  // A restarted coordinator resumes at the stored iteration 4; the stage's
  // reports of 5 and 6 were lost with the old one's memory.
  ProgressTracker t(/*complete_through=*/4);
  ProgressTracker::Added early = t.Add(Report(4), {0, 0});  // at or before the mark
  EXPECT_TRUE(early.taken);
  EXPECT_EQ(early.next_iteration, 5);
  ProgressTracker::Added gap = t.Add(Report(7), {0, 0});
  EXPECT_FALSE(gap.taken);
  EXPECT_EQ(gap.next_iteration, 5);
  EXPECT_EQ(t.Newest(), 4);  // nothing of it was kept
  // Another stage is unaffected; the first sends again from 5, in order.
  EXPECT_TRUE(t.Add(Report(5), {0, 1}).taken);
  EXPECT_TRUE(t.Add(Report(6), {0, 1}).taken);
  for (int64_t it = 5; it <= 7; ++it) {
    ProgressTracker::Added a = t.Add(Report(it), {0, 0});
    EXPECT_TRUE(a.taken);
    EXPECT_EQ(a.next_iteration, it + 1);
  }
  // 5 and 6 are complete, in order; 7 waits for the second stage.
  EXPECT_EQ(t.CompleteThrough(2), 6);
  t.MarkComplete(6);
  EXPECT_EQ(t.last_complete(), 6);
  EXPECT_EQ(t.Newest(), 7);
}

TEST(ProgressTrackerTest, ACompleteIterationWaitsForItsRecordAndReportsBeyondTheWindowWait) {
  ProgressTracker t;
  t.Add(Report(1), {0, 0});
  // The record of 1 could not be stored (no MarkComplete): the next report
  // finds it complete again, with the next one.
  ASSERT_EQ(t.CompleteThrough(1), 1);
  t.Add(Report(2), {0, 0});
  ASSERT_EQ(t.CompleteThrough(1), 2);
  t.MarkComplete(2);
  // A stage runs ahead of the last stored iteration by at most the window.
  ProgressTracker w;
  for (int64_t it = 1; it <= rpc::kMaxUnacknowledgedReports; ++it) {
    ASSERT_TRUE(w.Add(Report(it), {0, 0}).taken) << it;
  }
  ProgressTracker::Added beyond = w.Add(Report(rpc::kMaxUnacknowledgedReports + 1), {0, 0});
  EXPECT_FALSE(beyond.taken);
  EXPECT_EQ(beyond.next_iteration, rpc::kMaxUnacknowledgedReports + 1);
  EXPECT_EQ(w.CompleteThrough(2), 0);
  w.Add(Report(1), {0, 1});
  w.MarkComplete(w.CompleteThrough(2));
  EXPECT_TRUE(w.Add(Report(rpc::kMaxUnacknowledgedReports + 1), {0, 0}).taken);
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
