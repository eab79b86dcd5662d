// A coordinator restart on the same data directory loses no job: running
// jobs stay RUNNING and continue once their workers re-register with their
// previous ids; pending jobs stay pending; history is intact.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/coordinator/coordinator_harness.h"

namespace chronos::coordinator::testing {
namespace {

std::string FreshDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   absl::StrCat("chronos_persist_", ::getpid(), "_", name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

v1::Assignment NextAssignment(FakeWorker& w) {
  absl::StatusOr<v1::WorkerCommand> cmd = w.Next();
  EXPECT_TRUE(cmd.ok() && cmd->has_assign()) << (cmd.ok() ? cmd->DebugString() : "");
  return cmd.ok() ? cmd->assign() : v1::Assignment();
}

// Registers both pods (under their ids from before a restart, when given)
// and opens their command streams.
absl::Status Join(FakeWorker& w0, FakeWorker& w1, const std::string& id0 = "",
                  const std::string& id1 = "") {
  for (auto [w, id] : {std::pair<FakeWorker*, const std::string*>{&w0, &id0}, {&w1, &id1}}) {
    absl::Status s = w->Register(*id);
    if (s.ok()) s = w->Attach();
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// Both workers report `iteration` as their last; the job with its history.
absl::StatusOr<v1::Job> FinishBoth(Harness& h, const std::string& name, FakeWorker& w0,
                                   const v1::Assignment& a0, FakeWorker& w1,
                                   const v1::Assignment& a1, int64_t iteration) {
  for (auto [w, a] : {std::pair<FakeWorker*, const v1::Assignment*>{&w0, &a0}, {&w1, &a1}}) {
    absl::StatusOr<v1::ProgressAck> ack = w->Progress(*a, iteration, /*finished=*/true);
    if (!ack.ok()) return ack.status();
  }
  return h.Get(name, true);
}

TEST(PersistenceTest, RestartKeepsEveryJobAndRunningJobsContinue) {
  Harness::Config config;
  config.data_dir = FreshDir("restart");
  std::string uid_running, uid_pending, id0, id1;
  {
    Harness h(config);
    ASSERT_TRUE(h.Start().ok());
    FakeWorker w0(h.channel(), "pod-0", "");
    FakeWorker w1(h.channel(), "pod-1", "");
    ASSERT_TRUE(Join(w0, w1).ok());
    id0 = w0.id();
    id1 = w1.id();
    absl::StatusOr<v1::Job> running = h.Submit(TinySpec("survivor"), "req-a");
    ASSERT_TRUE(running.ok()) << running.status();
    uid_running = running->metadata().uid();
    absl::StatusOr<v1::Job> pending = h.Submit(TinySpec("patient", 4));
    ASSERT_TRUE(pending.ok()) << pending.status();
    EXPECT_EQ(pending->status().state(), v1::JOB_STATE_PENDING);
    uid_pending = pending->metadata().uid();
    const v1::Assignment a0 = NextAssignment(w0);
    const v1::Assignment a1 = NextAssignment(w1);
    ASSERT_TRUE(w0.Progress(a0, 1, false, 0, 1).ok());
    ASSERT_TRUE(w1.Progress(a1, 1, false, 0, 1).ok());
    ASSERT_TRUE(w0.Progress(a0, 2).ok());
    ASSERT_TRUE(w1.Progress(a1, 2).ok());
    w0.Detach();
    w1.Detach();
    h.Stop();
  }

  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  v1::ListJobsResponse list;
  auto ctx = h.Context();
  ASSERT_TRUE(h.control()->ListJobs(ctx.get(), v1::ListJobsRequest(), &list).ok());
  ASSERT_EQ(list.jobs_size(), 2);
  EXPECT_EQ(list.jobs(0).metadata().uid(), uid_running);
  EXPECT_EQ(list.jobs(0).status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(list.jobs(0).status().iteration(), 2);
  EXPECT_EQ(list.jobs(0).status().checkpoint_iteration(), 1);
  EXPECT_EQ(list.jobs(0).status().attempt(), 1);
  EXPECT_EQ(list.jobs(1).metadata().uid(), uid_pending);
  EXPECT_EQ(list.jobs(1).status().state(), v1::JOB_STATE_PENDING);

  absl::StatusOr<v1::Job> job = h.Get("survivor", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->iterations_size(), 2);
  bool restarted_event = false;
  for (const v1::JobEvent& e : job->events()) {
    restarted_event |= e.type() == "CoordinatorRestarted";
  }
  EXPECT_TRUE(restarted_event);
  // The request id still maps to the job.
  absl::StatusOr<v1::Job> again = h.Submit(TinySpec("survivor"), "req-a");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->metadata().uid(), uid_running);

  // The workers come back under their ids and get their assignments again,
  // resuming from the durable checkpoint.
  FakeWorker w0(h.channel(), "pod-0", "");
  FakeWorker w1(h.channel(), "pod-1", "");
  ASSERT_TRUE(Join(w0, w1, id0, id1).ok());
  EXPECT_EQ(w0.id(), id0);
  const v1::Assignment a0 = NextAssignment(w0);
  const v1::Assignment a1 = NextAssignment(w1);
  EXPECT_EQ(a0.job(), "survivor");
  EXPECT_EQ(a0.attempt(), 1);
  EXPECT_EQ(a0.resume_iteration(), 1);
  EXPECT_NE(a0.device(), a1.device());
  job = FinishBoth(h, "survivor", w0, a0, w1, a1, 3);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job->iterations_size(), 3);
  // Sequences stayed unique across the restart.
  std::set<int64_t> seqs;
  for (const auto& e : job->events()) EXPECT_TRUE(seqs.insert(e.sequence()).second);
  for (const auto& r : job->iterations()) EXPECT_TRUE(seqs.insert(r.sequence()).second);
}

// A report the old coordinator took but had not stored (the other stage
// had not reported that iteration) is lost with it; its ack said so
// (durable_iteration stayed behind it), so the worker still holds it. The
// restarted coordinator starts from what is stored, refuses the worker's
// next report because of the gap, names the missing iteration, and once it
// is sent again every iteration is recorded exactly once, in order.
TEST(PersistenceTest, AReportTakenButNotStoredBeforeARestartIsAskedForAgainAndRecordedOnce) {
  Harness::Config config;
  config.data_dir = FreshDir("late");
  std::string id0, id1;
  {
    Harness h(config);
    ASSERT_TRUE(h.Start().ok());
    FakeWorker w0(h.channel(), "pod-0", "");
    FakeWorker w1(h.channel(), "pod-1", "");
    ASSERT_TRUE(Join(w0, w1).ok());
    id0 = w0.id();
    id1 = w1.id();
    ASSERT_TRUE(h.Submit(TinySpec("late")).ok());
    const v1::Assignment a0 = NextAssignment(w0);
    const v1::Assignment a1 = NextAssignment(w1);
    ASSERT_TRUE(w0.Progress(a0, 1).ok());
    absl::StatusOr<v1::ProgressAck> ack = w1.Progress(a1, 1);
    ASSERT_TRUE(ack.ok());
    EXPECT_EQ(ack->durable_iteration(), 1);
    ack = w0.Progress(a0, 2);  // taken, not stored, then the coordinator dies
    ASSERT_TRUE(ack.ok());
    EXPECT_EQ(ack->durable_iteration(), 1);
    EXPECT_EQ(ack->next_iteration(), 3);
    w0.Detach();
    w1.Detach();
    h.Stop();
  }
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  FakeWorker w0(h.channel(), "pod-0", "");
  FakeWorker w1(h.channel(), "pod-1", "");
  ASSERT_TRUE(Join(w0, w1, id0, id1).ok());
  const v1::Assignment a0 = NextAssignment(w0);
  const v1::Assignment a1 = NextAssignment(w1);
  absl::StatusOr<v1::ProgressAck> ack = w1.Progress(a1, 2);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->durable_iteration(), 1);  // what the store holds
  ASSERT_TRUE(w1.Progress(a1, 3).ok());
  ack = w0.Progress(a0, 3);  // its next report: 2 is missing
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->next_iteration(), 2);
  absl::StatusOr<v1::Job> job = h.Get("late", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().iteration(), 1);
  EXPECT_EQ(RecordedIterations(*job), (std::set<int64_t>{1}));

  ASSERT_TRUE(w0.Progress(a0, 2).ok());  // sent again from the gap
  ack = w0.Progress(a0, 3);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->durable_iteration(), 3);
  job = h.Get("late", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().iteration(), 3);
  EXPECT_EQ(RecordedIterations(*job), (std::set<int64_t>{1, 2, 3}));

  // Neither a duplicate of a recorded iteration nor the finish adds a record.
  ASSERT_TRUE(w1.Progress(a1, 2).ok());
  job = FinishBoth(h, "late", w0, a0, w1, a1, 4);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(job->iterations_size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(job->iterations(i).iteration(), i + 1);
}

}  // namespace
}  // namespace chronos::coordinator::testing
