// Background planning of submitted jobs: SubmitJob answers before the plan is
// made, the job shows PLANNING until it lands, a cancel stops the search
// itself, a restart plans again, and a plan that fails or runs out of time
// fails the job with a message naming the field.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "coordinator/plan_queue.h"
#include "coordinator/replanner.h"
#include "tests/coordinator/coordinator_harness.h"

namespace chronos::coordinator::testing {
namespace {

// Holds every plan at a gate until released; a held plan also ends (with
// kCancelled) as soon as its stop check fires, as a real search does.
class GateReplanner : public Replanner {
 public:
  absl::StatusOr<SharedPlan> PlanSpec(const v1::JobSpec& spec, const std::string& field,
                                      const StopCheck& should_stop) override {
    entered_count_.fetch_add(1);
    {
      absl::MutexLock lock(&mu_);
      auto open_or_stopped = [&] {
        mu_.AssertHeld();
        return released_ || should_stop();
      };
      // The stop check reads atomics and the fake clock, so poll it.
      while (!mu_.AwaitWithTimeout(absl::Condition(&open_or_stopped), absl::Milliseconds(5))) {
      }
      if (!released_) {
        stopped_count_.fetch_add(1);
        return absl::CancelledError("stopped at the gate");
      }
    }
    return Replanner::PlanSpec(spec, field, should_stop);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  // Waits until `n` plans have entered (or stopped at) the gate.
  bool WaitEntered(int n) { return WaitCount(entered_count_, n); }
  bool WaitStopped(int n) { return WaitCount(stopped_count_, n); }

 private:
  static bool WaitCount(const std::atomic<int>& count, int n) {
    const absl::Time end = absl::Now() + kWait;
    while (count.load() < n) {
      if (absl::Now() > end) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }
  absl::Mutex mu_;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int> entered_count_{0};
  std::atomic<int> stopped_count_{0};
};

// Runs the real planner, recording what its stop check said and how the
// plan ended, so a test sees the cancel reach the search itself.
class WatchedReplanner : public Replanner {
 public:
  absl::StatusOr<SharedPlan> PlanSpec(const v1::JobSpec& spec, const std::string& field,
                                      const StopCheck& should_stop) override {
    StopCheck watched = [this, should_stop] {
      if (polls_.fetch_add(1) == 0) searching_.Notify();
      const bool stop = should_stop();
      if (stop) saw_stop_.store(true);
      return stop;
    };
    absl::StatusOr<SharedPlan> plan = Replanner::PlanSpec(spec, field, watched);
    {
      absl::MutexLock lock(&mu_);
      result_ = plan.status();
    }
    done_.Notify();
    return plan;
  }
  bool WaitSearching() { return searching_.WaitForNotificationWithTimeout(kWait); }
  bool WaitDone() { return done_.WaitForNotificationWithTimeout(kWait); }
  bool saw_stop() const { return saw_stop_.load(); }
  int64_t polls() const { return polls_.load(); }
  absl::Status result() {
    absl::MutexLock lock(&mu_);
    return result_;
  }

 private:
  absl::Notification searching_;
  absl::Notification done_;
  std::atomic<bool> saw_stop_{false};
  std::atomic<int64_t> polls_{0};
  absl::Mutex mu_;
  absl::Status result_ ABSL_GUARDED_BY(mu_);
};

using Workers = std::vector<std::unique_ptr<FakeWorker>>;

Workers StartWorkers(Harness& h, int n) {
  Workers workers;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<FakeWorker>(h.channel(), absl::StrCat("pod-", i), h.token());
    EXPECT_TRUE(w->Register().ok());
    EXPECT_TRUE(w->Attach().ok());
    workers.push_back(std::move(w));
  }
  return workers;
}

// Follows the job's WatchJob stream until a status snapshot is in `state`
// (or the job ends): the job as then seen.
absl::StatusOr<v1::Job> WatchUntil(Harness& h, const std::string& name, v1::JobState state) {
  v1::WatchJobRequest req;
  req.set_name(name);
  auto ctx = h.Context();
  auto reader = h.control()->WatchJob(ctx.get(), req);
  v1::JobUpdate u;
  v1::Job last;
  while (reader->Read(&u)) {
    if (!u.has_job()) continue;
    last = u.job();
    if (last.status().state() == state) {
      ctx->TryCancel();
      reader->Finish();
      return last;
    }
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return rpc::FromGrpcStatus(s);
  return last;  // ended in another (terminal) state
}

bool HasEvent(const v1::Job& job, const std::string& type) {
  for (const v1::JobEvent& e : job.events()) {
    if (e.type() == type) return true;
  }
  return false;
}

const v1::Condition* FindCondition(const v1::Job& job, const std::string& type) {
  for (const v1::Condition& c : job.status().conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::filesystem::path dir = std::filesystem::path(tmp != nullptr ? tmp : "/tmp") /
                              absl::StrCat("chronos-planning-", name, "-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// The planner's queue: tasks run in order on its thread; Shutdown sets the
// flag of the running task (which then ends) and of every queued one, which
// never runs; later tasks are refused the same way.
TEST(PlanQueueTest, ShutdownStopsTheRunningTaskAndDropsTheQueuedOnes) {
  PlanQueue queue(1);
  auto running = std::make_shared<std::atomic<bool>>(false);
  auto queued = std::make_shared<std::atomic<bool>>(false);
  auto late = std::make_shared<std::atomic<bool>>(false);
  absl::Notification started;
  std::atomic<bool> queued_ran{false};
  queue.Enqueue(running, [&] {
    started.Notify();
    while (!running->load()) absl::SleepFor(absl::Milliseconds(1));
  });
  queue.Enqueue(queued, [&] { queued_ran = true; });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(queue.Outstanding(), 2u);
  queue.Shutdown();  // returns once the running task saw its flag
  EXPECT_TRUE(running->load());
  EXPECT_TRUE(queued->load());
  EXPECT_FALSE(queued_ran.load());
  EXPECT_EQ(queue.Outstanding(), 0u);
  bool late_ran = false;
  queue.Enqueue(late, [&] { late_ran = true; });
  EXPECT_TRUE(late->load());
  EXPECT_FALSE(late_ran);
}

TEST(PlanQueueTest, WithoutThreadsATaskRunsInsideEnqueue) {
  PlanQueue queue(0);
  bool ran = false;
  queue.Enqueue(std::make_shared<std::atomic<bool>>(false), [&] { ran = true; });
  EXPECT_TRUE(ran);
  EXPECT_EQ(queue.Outstanding(), 0u);
}

// A harness whose jobs are planned on one background planner thread by
// `replanner`, as the daemon plans them.
Harness::Config PlanInTheBackground(std::shared_ptr<Replanner> replanner) {
  Harness::Config config;
  config.replanner = std::move(replanner);
  config.planner_threads = 1;
  return config;
}

TEST(PlanningTest, SubmitAnswersBeforeThePlanIsMadeAndTheJobShowsPlanning) {
  auto gate = std::make_shared<GateReplanner>();
  Harness::Config config = PlanInTheBackground(gate);
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  Workers w = StartWorkers(h, 2);

  // The plan is held at the gate, yet SubmitJob answers.
  absl::StatusOr<v1::Job> submitted = h.Submit(TinySpec("held"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->status().state(), v1::JOB_STATE_PLANNING);
  ASSERT_TRUE(gate->WaitEntered(1));

  absl::StatusOr<v1::Job> job = h.Get("held", /*history=*/true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_PLANNING);
  const v1::Condition* planned = FindCondition(*job, "Planned");
  ASSERT_NE(planned, nullptr);
  EXPECT_FALSE(planned->status());
  EXPECT_TRUE(HasEvent(*job, "Submitted"));
  EXPECT_FALSE(HasEvent(*job, "Planned"));
  // Listing by state finds it; its schedule and policy wait for the plan.
  {
    v1::ListJobsRequest req;
    req.set_state(v1::JOB_STATE_PLANNING);
    v1::ListJobsResponse list;
    auto ctx = h.Context();
    ASSERT_TRUE(h.control()->ListJobs(ctx.get(), req, &list).ok());
    ASSERT_EQ(list.jobs_size(), 1);
    EXPECT_EQ(list.jobs(0).metadata().name(), "held");
  }
  {
    v1::GetScheduleRequest req;
    req.set_name("held");
    v1::GetScheduleResponse resp;
    auto ctx = h.Context();
    EXPECT_EQ(h.control()->GetSchedule(ctx.get(), req, &resp).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    v1::UpdatePolicyRequest req;
    req.set_name("held");
    req.set_offload_ratio(0.5);
    v1::Job out;
    auto ctx = h.Context();
    EXPECT_EQ(h.control()->UpdatePolicy(ctx.get(), req, &out).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  // No worker hears of the job before its plan exists.
  EXPECT_EQ(w[0]->Next(absl::Milliseconds(100)).status().code(),
            absl::StatusCode::kDeadlineExceeded);

  gate->Release();
  absl::StatusOr<v1::Job> running = WatchUntil(h, "held", v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->status().state(), v1::JOB_STATE_RUNNING) << running->status().message();
  for (auto& worker : w) {
    absl::StatusOr<v1::WorkerCommand> cmd = worker->Next();
    ASSERT_TRUE(cmd.ok() && cmd->has_assign());
    EXPECT_TRUE(cmd->assign().has_schedule());
  }
  job = h.Get("held", /*history=*/true);
  ASSERT_TRUE(job.ok());
  EXPECT_TRUE(HasEvent(*job, "Planned"));
  planned = FindCondition(*job, "Planned");
  ASSERT_NE(planned, nullptr);
  EXPECT_TRUE(planned->status());
}

// The real planner with a search of 10^8 steps (minutes): a cancel must
// reach the order search's loop and end it.
TEST(PlanningTest, CancelDuringPlanningStopsTheSearch) {
  auto watched = std::make_shared<WatchedReplanner>();
  Harness::Config config = PlanInTheBackground(watched);
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  v1::JobSpec spec = TinySpec("long-search");
  spec.mutable_schedule()->set_order_search_steps(100'000'000);
  ASSERT_EQ(h.Submit(spec)->status().state(), v1::JOB_STATE_PLANNING);
  ASSERT_TRUE(watched->WaitSearching());
  absl::StatusOr<v1::Job> cancelled = h.Cancel("long-search");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status().state(), v1::JOB_STATE_CANCELLED);
  // The search ends at its next poll, not after 10^8 steps.
  ASSERT_TRUE(watched->WaitDone()) << "the search did not stop after the cancel";
  EXPECT_TRUE(watched->saw_stop());
  EXPECT_EQ(watched->result().code(), absl::StatusCode::kCancelled) << watched->result();
  // Far fewer polls than a finished search makes (one per 256 steps).
  EXPECT_LT(watched->polls(), 100'000'000 / 256);
  absl::StatusOr<v1::Job> job = h.Get("long-search", /*history=*/true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(HasEvent(*job, "Planned"));
}

TEST(PlanningTest, ARestartPlansAJobThatWasStillPlanning) {
  Harness::Config config;
  config.data_dir = FreshDir("restart");
  std::string uid;
  {
    auto gate = std::make_shared<GateReplanner>();
    Harness::Config first = config;
    first.replanner = gate;
    first.planner_threads = 1;
    Harness h(first);
    ASSERT_TRUE(h.Start().ok());
    absl::StatusOr<v1::Job> job = h.Submit(TinySpec("interrupted"));
    ASSERT_TRUE(job.ok()) << job.status();
    uid = job->metadata().uid();
    ASSERT_TRUE(gate->WaitEntered(1));
    // Shutting down stops the plan held at the gate.
    h.Stop();
    EXPECT_TRUE(gate->WaitStopped(1));
  }
  // The next coordinator plans it again (inline here) and it moves on.
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  absl::StatusOr<v1::Job> job = h.Get("interrupted", /*history=*/true);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->metadata().uid(), uid);
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_PENDING) << job->status().message();
  EXPECT_TRUE(HasEvent(*job, "CoordinatorRestarted"));
  EXPECT_TRUE(HasEvent(*job, "Planned"));
  Workers w = StartWorkers(h, 2);
  for (auto& worker : w) {
    absl::StatusOr<v1::WorkerCommand> cmd = worker->Next();
    ASSERT_TRUE(cmd.ok() && cmd->has_assign());
    EXPECT_EQ(cmd->assign().job(), "interrupted");
  }
  std::filesystem::remove_all(config.data_dir);
}

TEST(PlanningTest, ASpecThatCannotBePlannedFailsTheJobNamingTheField) {
  Harness h(Harness::Config{});
  ASSERT_TRUE(h.Start().ok());
  Workers w = StartWorkers(h, 2);
  v1::JobSpec spec = TinySpec("tight");
  spec.mutable_memory()->set_hbm_budget_bytes(64 << 10);
  absl::StatusOr<v1::Job> job = h.Submit(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job->status().message().find("memory.hbm_budget"), std::string::npos)
      << job->status().message();
  const v1::Condition* failed = FindCondition(*job, "Failed");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->reason(), "PlanFailed");
  // No worker heard of it: the next job is the first thing they get.
  ASSERT_TRUE(h.Submit(TinySpec("roomy")).ok());
  for (auto& worker : w) {
    absl::StatusOr<v1::WorkerCommand> cmd = worker->Next();
    ASSERT_TRUE(cmd.ok() && cmd->has_assign());
    EXPECT_EQ(cmd->assign().job(), "roomy");
  }
}

TEST(PlanningTest, APlanPastTheDeadlineFailsTheJobNamingTheFields) {
  auto gate = std::make_shared<GateReplanner>();
  Harness::Config config = PlanInTheBackground(gate);
  config.plan_deadline = absl::Seconds(30);
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  v1::JobSpec spec = TinySpec("endless");
  spec.mutable_schedule()->set_order_search_steps(1000);
  ASSERT_TRUE(h.Submit(spec).ok());
  ASSERT_TRUE(gate->WaitEntered(1));
  h.clock()->Advance(absl::Seconds(29));
  // Not yet: the plan is still held, the job still PLANNING.
  EXPECT_EQ(h.Get("endless")->status().state(), v1::JOB_STATE_PLANNING);
  h.clock()->Advance(absl::Seconds(2));
  ASSERT_TRUE(gate->WaitStopped(1));
  absl::StatusOr<v1::Job> job = WatchUntil(h, "endless", v1::JOB_STATE_FAILED);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->status().state(), v1::JOB_STATE_FAILED);
  const std::string& message = job->status().message();
  EXPECT_NE(message.find("--plan-deadline-seconds"), std::string::npos) << message;
  EXPECT_NE(message.find("schedule.order_search_steps 1000"), std::string::npos) << message;
  EXPECT_NE(message.find("training.microbatches"), std::string::npos) << message;
}

TEST(PlanningTest, SubmitIsRefusedWhileTooManyJobsWaitToBePlanned) {
  auto gate = std::make_shared<GateReplanner>();
  Harness::Config config = PlanInTheBackground(gate);
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  // The default queue holds 64; the first is held at the gate.
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(h.Submit(TinySpec(absl::StrCat("queued-", i))).ok()) << i;
  }
  absl::StatusOr<v1::Job> refused = h.Submit(TinySpec("one-too-many"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(h.Get("one-too-many").status().code(), absl::StatusCode::kNotFound);
  // A retry of an accepted submission still answers with its job.
  EXPECT_TRUE(h.Submit(TinySpec("queued-3")).ok());
  gate->Release();
}

}  // namespace
}  // namespace chronos::coordinator::testing
