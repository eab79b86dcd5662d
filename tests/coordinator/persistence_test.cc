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

TEST(PersistenceTest, RestartKeepsEveryJobAndRunningJobsContinue) {
  Harness::Config config;
  config.data_dir = FreshDir("restart");
  std::string uid_running, uid_pending, id0, id1;
  {
    Harness h(config);
    ASSERT_TRUE(h.Start().ok());
    FakeWorker w0(h.channel(), "pod-0", "");
    FakeWorker w1(h.channel(), "pod-1", "");
    ASSERT_TRUE(w0.Register().ok());
    ASSERT_TRUE(w1.Register().ok());
    ASSERT_TRUE(w0.Attach().ok());
    ASSERT_TRUE(w1.Attach().ok());
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
  ASSERT_TRUE(w0.Register(id0).ok());
  ASSERT_TRUE(w1.Register(id1).ok());
  EXPECT_EQ(w0.id(), id0);
  ASSERT_TRUE(w0.Attach().ok());
  ASSERT_TRUE(w1.Attach().ok());
  const v1::Assignment a0 = NextAssignment(w0);
  const v1::Assignment a1 = NextAssignment(w1);
  EXPECT_EQ(a0.job(), "survivor");
  EXPECT_EQ(a0.attempt(), 1);
  EXPECT_EQ(a0.resume_iteration(), 1);
  EXPECT_NE(a0.device(), a1.device());
  ASSERT_TRUE(w0.Progress(a0, 3, true).ok());
  ASSERT_TRUE(w1.Progress(a1, 3, true).ok());
  job = h.Get("survivor", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job->iterations_size(), 3);
  // Sequences stayed unique across the restart.
  std::set<int64_t> seqs;
  for (const auto& e : job->events()) EXPECT_TRUE(seqs.insert(e.sequence()).second);
  for (const auto& r : job->iterations()) EXPECT_TRUE(seqs.insert(r.sequence()).second);
}

TEST(PersistenceTest, WorkersThatNeverReturnAreReplacedAfterTheHeartbeatTimeout) {
  Harness::Config config;
  config.data_dir = FreshDir("lost");
  {
    Harness h(config);
    ASSERT_TRUE(h.Start().ok());
    FakeWorker w0(h.channel(), "pod-0", "");
    FakeWorker w1(h.channel(), "pod-1", "");
    ASSERT_TRUE(w0.Register().ok() && w1.Register().ok());
    ASSERT_TRUE(w0.Attach().ok() && w1.Attach().ok());
    ASSERT_TRUE(h.Submit(TinySpec("orphan")).ok());
    const v1::Assignment a0 = NextAssignment(w0);
    const v1::Assignment a1 = NextAssignment(w1);
    ASSERT_TRUE(w0.Progress(a0, 1, false, 0, 1).ok());
    ASSERT_TRUE(w1.Progress(a1, 1, false, 0, 1).ok());
    w0.Detach();
    w1.Detach();
  }
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  EXPECT_EQ(h.Get("orphan")->status().state(), v1::JOB_STATE_RUNNING);
  h.clock()->Advance(absl::Seconds(16));
  h.coordinator()->RunMaintenance();
  absl::StatusOr<v1::Job> job = h.Get("orphan");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RECOVERING);
  EXPECT_NE(job->status().message().find("heartbeat"), std::string::npos);
  EXPECT_EQ(job->status().restarts(), 1);

  // Replacement workers (new processes, new names) take the job over from
  // the checkpoint written before the restart.
  FakeWorker r0(h.channel(), "pod-2", "");
  FakeWorker r1(h.channel(), "pod-3", "");
  ASSERT_TRUE(r0.Register().ok() && r1.Register().ok());
  ASSERT_TRUE(r0.Attach().ok() && r1.Attach().ok());
  h.clock()->Advance(absl::Seconds(2));  // past the back-off
  h.coordinator()->RunMaintenance();
  job = h.Get("orphan");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->status().attempt(), 2);
  const v1::Assignment b0 = NextAssignment(r0);
  const v1::Assignment b1 = NextAssignment(r1);
  EXPECT_EQ(b0.attempt(), 2);
  EXPECT_EQ(b0.resume_iteration(), 1);
  EXPECT_EQ(b0.num_devices(), 2);
  ASSERT_TRUE(r0.Progress(b0, 2, false).ok());
  ASSERT_TRUE(r1.Progress(b1, 2, false).ok());
  ASSERT_TRUE(r0.Progress(b0, 3, true).ok());
  ASSERT_TRUE(r1.Progress(b1, 3, true).ok());
  EXPECT_EQ(h.Get("orphan")->status().state(), v1::JOB_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace chronos::coordinator::testing
