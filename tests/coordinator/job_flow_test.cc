// The control flow end to end over real gRPC with fake workers: submit ->
// assignments -> progress -> SUCCEEDED, watch, validation, cancel, live
// policy updates, faults and heartbeat loss, shutdown with open streams.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "coordinator/replanner.h"
#include "core/device_profile.h"
#include "core/job_width.h"
#include "core/planner.h"
#include "tests/coordinator/coordinator_harness.h"

namespace chronos::coordinator::testing {
namespace {

using Workers = std::vector<std::unique_ptr<FakeWorker>>;

Workers StartWorkers(Harness& h, int n, const std::string& prefix = "pod") {
  Workers workers;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<FakeWorker>(h.channel(), absl::StrCat(prefix, "-", i), h.token());
    EXPECT_TRUE(w->Register().ok());
    EXPECT_TRUE(w->Attach().ok());
    workers.push_back(std::move(w));
  }
  return workers;
}

// Each worker's next command, which must be an assignment.
std::vector<v1::Assignment> TakeAssignments(Workers& workers) {
  std::vector<v1::Assignment> out;
  for (auto& w : workers) {
    absl::StatusOr<v1::WorkerCommand> cmd = w->Next();
    EXPECT_TRUE(cmd.ok()) << cmd.status();
    EXPECT_TRUE(cmd.ok() && cmd->has_assign()) << (cmd.ok() ? cmd->DebugString() : "");
    out.push_back(cmd.ok() ? cmd->assign() : v1::Assignment());
  }
  return out;
}

// All workers report `iteration`.
void ReportAll(Workers& w, const std::vector<v1::Assignment>& a, int64_t iteration,
               bool finished = false, int64_t generation = 0, int64_t checkpoint = 0) {
  for (size_t i = 0; i < w.size(); ++i) {
    absl::StatusOr<v1::ProgressAck> ack =
        w[i]->Progress(a[i], iteration, finished, generation, checkpoint);
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_FALSE(ack->stop());
  }
}

bool HasEvent(const v1::Job& job, const std::string& type) {
  return std::any_of(job.events().begin(), job.events().end(),
                     [&](const v1::JobEvent& e) { return e.type() == type; });
}

const v1::JobEvent* FindEvent(const v1::Job& job, const std::string& type) {
  for (const v1::JobEvent& e : job.events()) {
    if (e.type() == type) return &e;
  }
  return nullptr;
}

class JobFlowTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(h_.Start().ok()); }
  Harness h_{Harness::Config()};
};

TEST_F(JobFlowTest, SubmitAssignsStagesRunsAndSucceeds) {
  Workers w = StartWorkers(h_, 2);
  absl::StatusOr<v1::Job> job = h_.Submit(TinySpec("tiny"));
  ASSERT_TRUE(job.ok()) << job.status();
  // Enough idle attached workers: admitted at once.
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->metadata().generation(), 1);
  EXPECT_FALSE(job->metadata().uid().empty());
  EXPECT_EQ(job->status().attempt(), 1);
  ASSERT_EQ(job->status().assignments_size(), 2);

  std::vector<v1::Assignment> a = TakeAssignments(w);
  std::set<int> devices;
  for (const v1::Assignment& x : a) {
    devices.insert(x.device());
    EXPECT_EQ(x.job(), "tiny");
    EXPECT_EQ(x.attempt(), 1);
    EXPECT_EQ(x.num_devices(), 2);
    EXPECT_EQ(x.data_parallel(), 1);
    EXPECT_EQ(x.store_prefix(), "jobs/tiny/attempt-1/");
    EXPECT_EQ(x.resume_iteration(), 0);
    EXPECT_EQ(x.policy_generation(), 1);
    EXPECT_EQ(x.spec().name(), "tiny");
    // Only this device's action list travels, with the shared metadata.
    ASSERT_EQ(x.schedule().devices_size(), 1);
    EXPECT_EQ(x.schedule().devices(0).device(), x.device());
    EXPECT_GT(x.schedule().devices(0).actions_size(), 0);
    EXPECT_EQ(x.schedule().num_devices(), 2);
  }
  EXPECT_EQ(devices, (std::set<int>{0, 1}));
  // ListWorkers shows each worker's stage from the job's assignments, the
  // one place the worker -> stage mapping is kept.
  {
    auto ctx = h_.Context();
    v1::ListWorkersRequest req;
    v1::ListWorkersResponse list;
    ASSERT_TRUE(h_.control()->ListWorkers(ctx.get(), req, &list).ok());
    std::map<std::string, int> stage_of;
    for (const v1::StageAssignment& s : job->status().assignments()) {
      stage_of[s.worker_id()] = s.device();
    }
    ASSERT_EQ(list.workers_size(), 2);
    for (const v1::WorkerStatus& ws : list.workers()) {
      EXPECT_EQ(ws.job(), "tiny");
      EXPECT_EQ(ws.device(), stage_of.at(ws.worker_id())) << ws.worker_id();
    }
  }

  // Transport rendezvous through the store, scoped to the attempt.
  {
    v1::StoreSetRequest set;
    set.set_key(a[0].store_prefix() + "rank0/addr");
    set.set_value("10.0.0.1:29500");
    v1::StoreSetResponse set_resp;
    auto ctx = w[0]->Context();
    ASSERT_TRUE(w[0]->stub()->StoreSet(ctx.get(), set, &set_resp).ok());
    v1::StoreGetRequest get;
    get.set_key(set.key());
    get.set_timeout_ms(10000);
    v1::StoreGetResponse get_resp;
    auto ctx2 = w[1]->Context();
    ASSERT_TRUE(w[1]->stub()->StoreGet(ctx2.get(), get, &get_resp).ok());
    EXPECT_EQ(get_resp.value(), "10.0.0.1:29500");
  }

  ReportAll(w, a, 1);
  ReportAll(w, a, 2, false, 0, /*checkpoint=*/2);
  absl::StatusOr<v1::Job> mid = h_.Get("tiny");
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(mid->status().iteration(), 2);
  EXPECT_EQ(mid->status().checkpoint_iteration(), 2);
  ReportAll(w, a, 3, /*finished=*/true);

  absl::StatusOr<v1::Job> done = h_.Get("tiny", /*history=*/true);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done->status().iteration(), 3);
  EXPECT_DOUBLE_EQ(done->status().loss(), 2.0);  // from the last stage
  EXPECT_DOUBLE_EQ(done->status().tokens_per_second(), 2000.0);
  EXPECT_TRUE(done->status().has_completion_time());
  ASSERT_EQ(done->iterations_size(), 3);
  for (int i = 0; i < 3; ++i) {
    const v1::IterationRecord& r = done->iterations(i);
    EXPECT_EQ(r.iteration(), i + 1);
    EXPECT_EQ(r.attempt(), 1);
    ASSERT_EQ(r.devices_size(), 2);
    EXPECT_EQ(r.devices(1).device(), 1);
    EXPECT_EQ(r.devices(1).peak_activation_bytes(), 1001);
  }
  for (const char* type : {"Submitted", "Admitted", "Running", "Checkpointed", "Succeeded"}) {
    EXPECT_TRUE(HasEvent(*done, type)) << type;
  }
  bool succeeded_condition = false;
  for (const v1::Condition& c : done->status().conditions()) {
    if (c.type() == "Succeeded") succeeded_condition = c.status();
    if (c.type() == "Running") EXPECT_FALSE(c.status());
  }
  EXPECT_TRUE(succeeded_condition);

  // Workers are free again, and the attempt's store scope is gone.
  absl::StatusOr<v1::ListWorkersResponse> workers = h_.Workers();
  ASSERT_TRUE(workers.ok());
  for (const v1::WorkerStatus& s : workers->workers()) {
    EXPECT_EQ(s.state(), v1::WORKER_STATE_IDLE) << s.worker_id();
    EXPECT_TRUE(s.attached());
  }
  v1::StoreSetRequest late;
  late.set_key(a[0].store_prefix() + "late");
  v1::StoreSetResponse late_resp;
  auto ctx = w[0]->Context();
  EXPECT_EQ(w[0]->stub()->StoreSet(ctx.get(), late, &late_resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // A late report from the finished attempt is told to stop.
  absl::StatusOr<v1::ProgressAck> ack = w[0]->Progress(a[0], 4);
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(ack->stop());
}

TEST_F(JobFlowTest, WatchReplaysHistoryThenFollowsLiveUntilTerminal) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("watched")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);

  absl::Mutex mu;
  std::vector<v1::JobUpdate> updates;
  grpc::Status watch_status;
  bool watch_done = false;
  grpc::ClientContext watch_ctx;
  std::thread watcher([&] {
    v1::WatchJobRequest req;
    req.set_name("watched");
    auto reader = h_.control()->WatchJob(&watch_ctx, req);
    v1::JobUpdate u;
    while (reader->Read(&u)) {
      absl::MutexLock lock(&mu);
      updates.push_back(u);
    }
    grpc::Status s = reader->Finish();
    absl::MutexLock lock(&mu);
    watch_status = s;
    watch_done = true;
  });
  auto saw_iteration = [&](int64_t it) {
    return [&, it] {
      return std::any_of(updates.begin(), updates.end(), [&](const v1::JobUpdate& u) {
        return u.has_iteration() && u.iteration().iteration() == it;
      });
    };
  };
  ReportAll(w, a, 1);
  {
    absl::MutexLock lock(&mu);
    auto cond = saw_iteration(1);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&cond), kWait));
  }
  ReportAll(w, a, 2);
  ReportAll(w, a, 3, true);
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&watch_done), kWait));
  }
  watcher.join();
  EXPECT_TRUE(watch_status.ok()) << watch_status.error_message();
  // Sequences never go back; history items are unique; the last update is
  // the terminal snapshot.
  int64_t last = 0;
  std::set<int64_t> seen;
  int iterations = 0;
  for (const v1::JobUpdate& u : updates) {
    EXPECT_GE(u.sequence(), last);
    last = u.sequence();
    if (u.has_event() || u.has_iteration()) {
      EXPECT_TRUE(seen.insert(u.sequence()).second) << u.sequence();
    }
    if (u.has_iteration()) ++iterations;
  }
  EXPECT_EQ(iterations, 3);
  ASSERT_FALSE(updates.empty());
  ASSERT_TRUE(updates.back().has_job());
  EXPECT_EQ(updates.back().job().status().state(), v1::JOB_STATE_SUCCEEDED);

  // A second watch from the middle replays only what came after.
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_name("watched");
  req.set_since_sequence(*seen.rbegin() - 1);
  auto reader = h_.control()->WatchJob(&ctx, req);
  v1::JobUpdate u;
  std::vector<v1::JobUpdate> tail;
  while (reader->Read(&u)) tail.push_back(u);
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_EQ(tail.size(), 2u);  // the last history item, then the snapshot
  EXPECT_EQ(tail[0].sequence(), *seen.rbegin());
  EXPECT_TRUE(tail[1].has_job());
}

TEST_F(JobFlowTest, InvalidSpecsAreRejectedNamingTheFieldBeforeAnyWorkerHearsOfThem) {
  Workers w = StartWorkers(h_, 2);
  struct Case {
    std::string field;
    std::function<void(v1::JobSpec*)> mutate;
  };
  const std::vector<Case> cases = {
      {"model.layers", [](v1::JobSpec* s) { s->mutable_model()->set_layers(0); }},
      {"model.hidden", [](v1::JobSpec* s) { s->mutable_model()->set_hidden(66); }},
      {"training.microbatches", [](v1::JobSpec* s) { s->mutable_training()->set_microbatches(1); }},
      {"schedule.kind", [](v1::JobSpec* s) { s->mutable_schedule()->set_kind("bogus"); }},
      {"name", [](v1::JobSpec* s) { s->set_name("Not_A_DNS_Label"); }},
  };
  for (const Case& c : cases) {
    v1::JobSpec spec = TinySpec("bad");
    c.mutate(&spec);
    absl::StatusOr<v1::Job> job = h_.Submit(spec);
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(job.status().message().find(c.field), std::string::npos)
        << c.field << ": " << job.status();
  }
  {
    v1::SubmitJobRequest req;  // no spec at all
    v1::Job job;
    auto ctx = h_.Context();
    grpc::Status s = h_.control()->SubmitJob(ctx.get(), req, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("spec"), std::string::npos);
  }
  // Nothing was stored...
  v1::ListJobsResponse list;
  auto ctx = h_.Context();
  ASSERT_TRUE(h_.control()->ListJobs(ctx.get(), v1::ListJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 0);
  // ...and nothing was pushed: the first command each worker gets is the
  // assignment of the next valid job (commands arrive in order).
  ASSERT_TRUE(h_.Submit(TinySpec("good")).ok());
  for (const v1::Assignment& a : TakeAssignments(w)) EXPECT_EQ(a.job(), "good");
}

TEST_F(JobFlowTest, OversizedRequestsAreRefused) {
  // A job spec is a page of YAML: 1 MiB serialized is the most accepted.
  v1::JobSpec spec = TinySpec("huge");
  spec.mutable_data()->set_path(std::string(2 << 20, 'x'));
  absl::StatusOr<v1::Job> job = h_.Submit(spec);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(job.status().message().find("spec is"), std::string::npos) << job.status();
  EXPECT_EQ(h_.Get("huge").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobFlowTest, UnknownJobsAreNotFound) {
  EXPECT_EQ(h_.Get("ghost").status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(h_.Get("ghost").status().message().find("ghost"), std::string::npos);
  EXPECT_EQ(h_.Cancel("ghost").status().code(), absl::StatusCode::kNotFound);
  {
    v1::UpdatePolicyRequest req;
    req.set_name("ghost");
    req.set_offload_ratio(0.5);
    v1::Job job;
    auto ctx = h_.Context();
    EXPECT_EQ(h_.control()->UpdatePolicy(ctx.get(), req, &job).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::GetScheduleRequest req;
    req.set_name("ghost");
    v1::GetScheduleResponse resp;
    auto ctx = h_.Context();
    EXPECT_EQ(h_.control()->GetSchedule(ctx.get(), req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::DeleteJobRequest req;
    req.set_name("ghost");
    v1::Job job;
    auto ctx = h_.Context();
    EXPECT_EQ(h_.control()->DeleteJob(ctx.get(), req, &job).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::WatchJobRequest req;
    req.set_name("ghost");
    auto ctx = h_.Context();
    auto reader = h_.control()->WatchJob(ctx.get(), req);
    v1::JobUpdate u;
    EXPECT_FALSE(reader->Read(&u));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(JobFlowTest, SubmitIsIdempotentByRequestIdAndByNameWithTheSameSpec) {
  absl::StatusOr<v1::Job> first = h_.Submit(TinySpec("idem"), "req-1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status().state(), v1::JOB_STATE_PENDING);  // no workers
  // Same request id: the same job, whatever the body says.
  v1::JobSpec other = TinySpec("idem");
  other.mutable_training()->set_iterations(99);
  absl::StatusOr<v1::Job> again = h_.Submit(other, "req-1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->metadata().uid(), first->metadata().uid());
  // Same name, same spec: the same job.
  absl::StatusOr<v1::Job> same = h_.Submit(TinySpec("idem"));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->metadata().uid(), first->metadata().uid());
  // Same name, different spec: a conflict.
  absl::StatusOr<v1::Job> conflict = h_.Submit(other, "req-2");
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(conflict.status().message().find("idem"), std::string::npos);
}

TEST_F(JobFlowTest, CancelStopsWorkersAndFreesThem) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("doomed")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ReportAll(w, a, 1);
  absl::StatusOr<v1::Job> cancelled = h_.Cancel("doomed");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status().state(), v1::JOB_STATE_CANCELLED);
  for (auto& worker : w) {
    absl::StatusOr<v1::WorkerCommand> cmd = worker->Next();
    ASSERT_TRUE(cmd.ok()) << cmd.status();
    ASSERT_TRUE(cmd->has_stop());
    EXPECT_EQ(cmd->stop().job(), "doomed");
    EXPECT_EQ(cmd->stop().attempt(), 1);
  }
  absl::StatusOr<v1::ProgressAck> ack = w[0]->Progress(a[0], 2);
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(ack->stop());
  // Idempotent.
  EXPECT_EQ(h_.Cancel("doomed")->status().state(), v1::JOB_STATE_CANCELLED);
  // The freed workers take the next job.
  ASSERT_TRUE(h_.Submit(TinySpec("next")).ok());
  for (const v1::Assignment& x : TakeAssignments(w)) EXPECT_EQ(x.job(), "next");
  // A pending job cancels at once; finished jobs can be deleted, running
  // ones cannot.
  ASSERT_TRUE(h_.Submit(TinySpec("waiting")).ok());
  EXPECT_EQ(h_.Cancel("waiting")->status().state(), v1::JOB_STATE_CANCELLED);
  v1::DeleteJobRequest del;
  del.set_name("next");
  v1::Job deleted;
  auto ctx = h_.Context();
  EXPECT_EQ(h_.control()->DeleteJob(ctx.get(), del, &deleted).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  del.set_name("doomed");
  auto ctx2 = h_.Context();
  ASSERT_TRUE(h_.control()->DeleteJob(ctx2.get(), del, &deleted).ok());
  EXPECT_EQ(h_.Get("doomed").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobFlowTest, UpdatePolicyPushesNewActionListsAndRecordsWhenApplied) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("live")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ReportAll(w, a, 1);

  v1::UpdatePolicyRequest req;
  req.set_name("live");
  req.set_offload_ratio(0.5);
  req.set_expected_generation(1);
  v1::Job updated;
  auto ctx = h_.Context();
  grpc::Status s = h_.control()->UpdatePolicy(ctx.get(), req, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.metadata().generation(), 2);
  EXPECT_EQ(updated.status().observed_generation(), 1);  // not applied yet
  EXPECT_DOUBLE_EQ(updated.spec().memory().offload_ratio(), 0.5);

  for (size_t i = 0; i < w.size(); ++i) {
    absl::StatusOr<v1::WorkerCommand> cmd = w[i]->Next();
    ASSERT_TRUE(cmd.ok()) << cmd.status();
    ASSERT_TRUE(cmd->has_policy()) << cmd->DebugString();
    EXPECT_EQ(cmd->policy().generation(), 2);
    EXPECT_EQ(cmd->policy().attempt(), 1);
    EXPECT_DOUBLE_EQ(cmd->policy().offload_ratio(), 0.5);
    ASSERT_EQ(cmd->policy().schedule().devices_size(), 1);
    EXPECT_EQ(cmd->policy().schedule().devices(0).device(), a[i].device());
  }

  // A stale expected generation and an out-of-range ratio are refused.
  req.set_expected_generation(1);
  auto ctx2 = h_.Context();
  EXPECT_EQ(h_.control()->UpdatePolicy(ctx2.get(), req, &updated).error_code(),
            grpc::StatusCode::ABORTED);
  req.set_expected_generation(0);
  req.set_offload_ratio(1.5);
  auto ctx3 = h_.Context();
  s = h_.control()->UpdatePolicy(ctx3.get(), req, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("offload_ratio"), std::string::npos);

  // Iteration 2 still ran the old policy on one device: not applied.
  w[0]->Progress(a[0], 2, false, 2).IgnoreError();
  w[1]->Progress(a[1], 2, false, 1).IgnoreError();
  EXPECT_EQ(h_.Get("live")->status().observed_generation(), 1);
  // Iteration 3 ran it everywhere.
  ReportAll(w, a, 3, false, 2);
  absl::StatusOr<v1::Job> job = h_.Get("live", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().observed_generation(), 2);
  EXPECT_EQ(job->status().policy().generation(), 2);
  EXPECT_DOUBLE_EQ(job->status().policy().offload_ratio(), 0.5);
  const v1::JobEvent* applied = FindEvent(*job, "PolicyApplied");
  ASSERT_NE(applied, nullptr);
  EXPECT_NE(applied->message().find("iteration 3"), std::string::npos) << applied->message();
  EXPECT_EQ(applied->iteration(), 3);
  // Pushed after iteration 1, the newest any stage had finished then.
  const v1::JobEvent* pushed = FindEvent(*job, "PolicyUpdated");
  ASSERT_NE(pushed, nullptr);
  EXPECT_EQ(pushed->iteration(), 1);
  const v1::JobEvent* submitted = FindEvent(*job, "Submitted");
  ASSERT_NE(submitted, nullptr);
  EXPECT_EQ(submitted->iteration(), -1);
  EXPECT_NE(
      h_.coordinator()->metrics()->Render().find("chronos_coordinator_policy_updates_total 1"),
      std::string::npos);
}

v1::WorkerState StateOf(Harness& h, const std::string& id) {
  absl::StatusOr<v1::ListWorkersResponse> workers = h.Workers();
  EXPECT_TRUE(workers.ok()) << workers.status();
  if (!workers.ok()) return v1::WORKER_STATE_UNSPECIFIED;
  for (const v1::WorkerStatus& s : workers->workers()) {
    if (s.worker_id() == id) return s.state();
  }
  return v1::WORKER_STATE_UNSPECIFIED;
}

absl::Status Fault(FakeWorker& w, const v1::Assignment& a, v1::FaultKind kind,
                   const std::string& message) {
  v1::FaultReport fault;
  fault.set_worker_id(w.id());
  fault.set_job(a.job());
  fault.set_attempt(a.attempt());
  fault.set_kind(kind);
  fault.set_message(message);
  fault.set_iteration(1);
  v1::FaultAck ack;
  auto ctx = w.Context();
  return rpc::FromGrpcStatus(w.stub()->ReportFault(ctx.get(), fault, &ack));
}

TEST_F(JobFlowTest, MissedHeartbeatsRecoverOntoFewerStagesFromTheLastCheckpoint) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("fragile")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ReportAll(w, a, 1);
  ReportAll(w, a, 2, false, 0, /*checkpoint=*/2);
  h_.clock()->Advance(absl::Seconds(10));
  // Only worker 1 keeps heartbeating.
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w[1]->id());
  v1::HeartbeatResponse hb_resp;
  auto ctx = w[1]->Context();
  ASSERT_TRUE(w[1]->stub()->Heartbeat(ctx.get(), hb, &hb_resp).ok());
  EXPECT_TRUE(hb_resp.known());
  h_.clock()->Advance(absl::Seconds(6));  // worker 0: 16 s > 3 x 5 s
  h_.coordinator()->RunMaintenance();

  absl::StatusOr<v1::Job> job = h_.Get("fragile");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RECOVERING);
  EXPECT_EQ(job->status().restarts(), 1);
  EXPECT_NE(job->status().message().find(w[0]->id()), std::string::npos) << job->status().message();
  EXPECT_NE(job->status().message().find("heartbeat"), std::string::npos);
  // The healthy stage is stopped cleanly...
  absl::StatusOr<v1::WorkerCommand> stop = w[1]->Next();
  ASSERT_TRUE(stop.ok()) << stop.status();
  ASSERT_TRUE(stop->has_stop());
  EXPECT_EQ(stop->stop().attempt(), 1);
  // ...and the dead worker's stream is closed: it must register again.
  absl::StatusOr<grpc::Status> end = w[0]->WaitStreamEnd();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::HeartbeatRequest dead_hb;
  dead_hb.set_worker_id(w[0]->id());
  auto ctx2 = w[0]->Context();
  ASSERT_TRUE(w[0]->stub()->Heartbeat(ctx2.get(), dead_hb, &hb_resp).ok());
  EXPECT_FALSE(hb_resp.known());
  EXPECT_EQ(StateOf(h_, w[0]->id()), v1::WORKER_STATE_DEAD);
  EXPECT_EQ(StateOf(h_, w[1]->id()), v1::WORKER_STATE_IDLE);

  // Past the back-off, one worker is too few for 2 stages: the job waits
  // for the full width first.
  auto beat = [&] {
    v1::HeartbeatRequest req;
    req.set_worker_id(w[1]->id());
    v1::HeartbeatResponse resp;
    auto hb_ctx = w[1]->Context();
    ASSERT_TRUE(w[1]->stub()->Heartbeat(hb_ctx.get(), req, &resp).ok());
    ASSERT_TRUE(resp.known());
  };
  h_.clock()->Advance(absl::Seconds(2));
  beat();
  h_.coordinator()->RunMaintenance();
  EXPECT_EQ(h_.Get("fragile")->status().state(), v1::JOB_STATE_RECOVERING);
  // Then it is re-planned onto the one healthy worker, resuming from the
  // checkpoint all stages wrote.
  h_.clock()->Advance(absl::Seconds(10));
  beat();
  h_.coordinator()->RunMaintenance();
  job = h_.Get("fragile");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->status().attempt(), 2);
  EXPECT_EQ(job->status().pipeline(), 1);
  EXPECT_EQ(job->status().iteration(), 2);
  ASSERT_EQ(job->status().assignments_size(), 1);
  EXPECT_EQ(job->status().assignments(0).worker_id(), w[1]->id());
  absl::StatusOr<v1::WorkerCommand> cmd = w[1]->Next();
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  ASSERT_TRUE(cmd->has_assign()) << cmd->DebugString();
  const v1::Assignment& b = cmd->assign();
  EXPECT_EQ(b.attempt(), 2);
  EXPECT_EQ(b.device(), 0);
  EXPECT_EQ(b.num_devices(), 1);
  EXPECT_EQ(b.spec().parallel().pipeline(), 1);
  EXPECT_EQ(b.resume_iteration(), 2);
  EXPECT_EQ(b.checkpoint_num_devices(), 2);
  EXPECT_EQ(b.store_prefix(), "jobs/fragile/attempt-2/");
  EXPECT_EQ(b.schedule().num_devices(), 1);
  // A straggler of attempt 1 is told to stop; attempt 2 finishes the job.
  absl::StatusOr<v1::ProgressAck> late = w[1]->Progress(a[1], 3);
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE(late->stop());
  absl::StatusOr<v1::ProgressAck> ack = w[1]->Progress(b, 3, /*finished=*/true);
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_FALSE(ack->stop());
  job = h_.Get("fragile", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(job->iterations_size(), 3);
  EXPECT_EQ(job->iterations(2).attempt(), 2);
  for (const char* type : {"WorkerLost", "Recovering", "Replanned", "Running", "Succeeded"}) {
    EXPECT_TRUE(HasEvent(*job, type)) << type;
  }
  const std::string metrics = h_.coordinator()->metrics()->Render();
  EXPECT_NE(metrics.find("chronos_coordinator_job_restarts_total 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("chronos_coordinator_workers{state=\"dead\"} 1"), std::string::npos);
}

// `spec` planned at `pipeline` x `data` on its own profile and budget, as
// the coordinator's planner sees it.
absl::StatusOr<PlannedSchedule> PlanAt(const v1::JobSpec& spec, int pipeline, int data) {
  const v1::JobSpec at = SpecAtWidth(spec, pipeline, data);
  absl::StatusOr<v1::DeviceProfile> profile = ResolveDeviceProfile(at.device());
  if (!profile.ok()) return profile.status();
  return PlanSchedule(at, *profile, at.schedule().kind());
}

// The peak of that plan; -1 if it does not fit.
int64_t PlannedPeak(const v1::JobSpec& spec, int pipeline, int data) {
  absl::StatusOr<PlannedSchedule> plan = PlanAt(spec, pipeline, data);
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok() || !plan->fits) return -1;
  int64_t peak = 0;
  for (const auto& d : plan->sim.devices) peak = std::max(peak, d.peak_bytes);
  return peak;
}

// Loses worker 0 of `w` by missed heartbeats, then lets the coordinator
// re-plan onto the others after the back-off and the wait for workers.
void LoseFirstWorkerAndRecover(Harness& h, Workers& w, const std::string& job) {
  auto beat = [&] {
    for (size_t i = 1; i < w.size(); ++i) {
      v1::HeartbeatRequest req;
      req.set_worker_id(w[i]->id());
      v1::HeartbeatResponse resp;
      auto ctx = w[i]->Context();
      ASSERT_TRUE(w[i]->stub()->Heartbeat(ctx.get(), req, &resp).ok());
      ASSERT_TRUE(resp.known());
    }
  };
  h.clock()->Advance(absl::Seconds(10));
  beat();
  h.clock()->Advance(absl::Seconds(6));
  h.coordinator()->RunMaintenance();
  ASSERT_EQ(h.Get(job)->status().state(), v1::JOB_STATE_RECOVERING);
  for (size_t i = 1; i < w.size(); ++i) {
    absl::StatusOr<v1::WorkerCommand> stop = w[i]->Next();
    ASSERT_TRUE(stop.ok() && stop->has_stop()) << i;
  }
  h.clock()->Advance(absl::Seconds(12));  // past the back-off and the wait
  beat();
  h.coordinator()->RunMaintenance();
}

// A 2 x 2 job that loses a worker has 3 left. One stage cannot hold the
// model in the budget, so the old rule (drop stages, keep replicas) had no
// width to go to; the job now keeps its 2 stages on one replica that runs
// twice the micro-batches, so the global batch is the spec's.
TEST_F(JobFlowTest, RecoveryDropsAReplicaWhenFewerStagesDoNotFit) {
  v1::JobSpec spec = TinySpec("replicas", /*pipeline=*/2, /*data=*/2);
  spec.mutable_memory()->set_optimizer_offload(v1::OPTIMIZER_OFFLOAD_OFF);
  // A budget that 2 stages meet at either data width, computed, not guessed.
  spec.mutable_memory()->set_hbm_budget_bytes(
      std::max(PlannedPeak(spec, 2, 2), PlannedPeak(spec, 2, 1)));
  ASSERT_GT(spec.memory().hbm_budget_bytes(), 0);
  ASSERT_EQ(PlannedPeak(spec, 1, 2), -1) << "one stage must not fit for this test";
  ASSERT_EQ(PlannedPeak(spec, 1, 1), -1);

  Workers w = StartWorkers(h_, 4);
  ASSERT_TRUE(h_.Submit(spec).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ReportAll(w, a, 1);
  ReportAll(w, a, 2, false, 0, /*checkpoint=*/2);
  LoseFirstWorkerAndRecover(h_, w, "replicas");
  if (HasFatalFailure()) return;

  absl::StatusOr<v1::Job> job = h_.Get("replicas", true);
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->status().state(), v1::JOB_STATE_RUNNING) << job->status().message();
  EXPECT_EQ(job->status().attempt(), 2);
  EXPECT_EQ(job->status().pipeline(), 2);
  EXPECT_EQ(job->status().data(), 1);
  ASSERT_EQ(job->status().assignments_size(), 2);
  const v1::JobEvent* replanned = FindEvent(*job, "Replanned");
  ASSERT_NE(replanned, nullptr);
  EXPECT_NE(replanned->message().find("2 stages x 1 replicas of 8 micro-batches (was 2 x 2)"),
            std::string::npos)
      << replanned->message();
  std::set<std::string> running;
  for (const v1::StageAssignment& s : job->status().assignments()) {
    EXPECT_EQ(s.data_rank(), 0);
    running.insert(s.worker_id());
  }
  EXPECT_EQ(running.count(w[0]->id()), 0u);
  std::vector<v1::Assignment> b;
  for (int i = 1; i < 4; ++i) {
    if (running.count(w[i]->id()) == 0) continue;
    absl::StatusOr<v1::WorkerCommand> cmd = w[i]->Next();
    ASSERT_TRUE(cmd.ok() && cmd->has_assign()) << i;
    b.push_back(cmd->assign());
  }
  ASSERT_EQ(b.size(), 2u);
  for (const v1::Assignment& x : b) {
    EXPECT_EQ(x.attempt(), 2);
    EXPECT_EQ(x.data_rank(), 0);
    EXPECT_EQ(x.data_parallel(), 1);
    EXPECT_EQ(x.num_devices(), 2);
    EXPECT_EQ(x.spec().parallel().data(), 1);
    EXPECT_EQ(x.spec().training().microbatches(), 8);
    EXPECT_EQ(x.schedule().num_microbatches(), 8);
    EXPECT_EQ(x.resume_iteration(), 2);
  }
  // The submitted spec is untouched: describe still shows what was asked.
  EXPECT_EQ(job->spec().parallel().data(), 2);
  EXPECT_EQ(job->spec().training().microbatches(), 4);
}

// When several layouts of the most devices fit, recovery takes the one the
// planner predicts the most tokens per second for.
TEST_F(JobFlowTest, RecoveryPicksTheFastestLayoutAmongThoseOfTheMostDevices) {
  const v1::JobSpec spec = TinySpec("fastest", /*pipeline=*/2, /*data=*/2);
  absl::StatusOr<PlannedSchedule> deep = PlanAt(spec, 2, 1);
  absl::StatusOr<PlannedSchedule> wide = PlanAt(spec, 1, 2);
  ASSERT_TRUE(deep.ok() && deep->fits && wide.ok() && wide->fits);
  const bool want_deep = deep->report.tokens_per_second() > wide->report.tokens_per_second();

  Workers w = StartWorkers(h_, 4);
  ASSERT_TRUE(h_.Submit(spec).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ReportAll(w, a, 1, false, 0, /*checkpoint=*/1);
  LoseFirstWorkerAndRecover(h_, w, "fastest");
  if (HasFatalFailure()) return;
  absl::StatusOr<v1::Job> job = h_.Get("fastest");
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->status().state(), v1::JOB_STATE_RUNNING) << job->status().message();
  EXPECT_EQ(job->status().pipeline(), want_deep ? 2 : 1);
  EXPECT_EQ(job->status().data(), want_deep ? 1 : 2);
  EXPECT_EQ(job->status().assignments_size(), 2);
}

// A planner that, once armed, holds every plan until released: a search of
// minutes stands in for it, deterministically.
class GatedReplanner : public Replanner {
 public:
  absl::StatusOr<SharedPlan> PlanSpec(const v1::JobSpec& spec, const std::string& field,
                                      const StopCheck& should_stop) override {
    if (armed_.load()) {
      if (!entered_flag_.exchange(true)) entered_.Notify();
      release_.WaitForNotification();
    }
    return Replanner::PlanSpec(spec, field, should_stop);
  }
  void Arm() { armed_.store(true); }
  bool WaitEntered(absl::Duration d) { return entered_.WaitForNotificationWithTimeout(d); }
  void Release() { release_.Notify(); }

 private:
  std::atomic<bool> armed_{false};
  std::atomic<bool> entered_flag_{false};
  absl::Notification entered_;
  absl::Notification release_;
};

// Recovery plans run with the controller's lock released: while one is being
// made (held here at the gate), GetJob and ListJobs answer at once, and the
// plan is committed when it is ready.
TEST(JobRecoveryTest, GetAndListAnswerWhileARecoveryPlanIsBeingMade) {
  auto planner = std::make_shared<GatedReplanner>();
  Harness::Config config;
  config.replanner = planner;
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  Workers w = StartWorkers(h, 4);
  ASSERT_TRUE(h.Submit(TinySpec("slowplan", /*pipeline=*/2, /*data=*/2)).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ReportAll(w, a, 1, false, 0, /*checkpoint=*/1);
  planner->Arm();
  std::thread recover([&] { LoseFirstWorkerAndRecover(h, w, "slowplan"); });
  ASSERT_TRUE(planner->WaitEntered(kWait)) << "no recovery plan was started";
  // The coordinator is inside the planner now. Reads must not wait for it.
  const absl::Time start = absl::Now();
  {
    auto ctx = h.Context();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
    v1::GetJobRequest req;
    req.set_name("slowplan");
    v1::Job job;
    ASSERT_TRUE(h.control()->GetJob(ctx.get(), req, &job).ok());
    EXPECT_EQ(job.status().state(), v1::JOB_STATE_RECOVERING);
  }
  {
    auto ctx = h.Context();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
    v1::ListJobsRequest req;
    v1::ListJobsResponse list;
    ASSERT_TRUE(h.control()->ListJobs(ctx.get(), req, &list).ok());
    EXPECT_EQ(list.jobs_size(), 1);
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  planner->Release();
  recover.join();
  absl::StatusOr<v1::Job> job;
  for (int i = 0; i < 200; ++i) {
    job = h.Get("slowplan");
    if (job.ok() && job->status().state() == v1::JOB_STATE_RUNNING) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RUNNING) << job->status().message();
  EXPECT_EQ(job->status().attempt(), 2);
}

TEST_F(JobFlowTest, ReportedFaultRestartsOnTheSameWorkersAfterTheBackoff) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("flaky")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ASSERT_TRUE(Fault(*w[1], a[1], v1::FAULT_TRANSPORT, "gloo: connection reset").ok());
  absl::StatusOr<v1::Job> job = h_.Get("flaky");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RECOVERING);
  EXPECT_NE(job->status().message().find("FAULT_TRANSPORT"), std::string::npos);
  EXPECT_TRUE(w[0]->Next()->has_stop());
  EXPECT_TRUE(w[1]->Next()->has_stop());
  // Still backing off: nothing restarts however often maintenance runs.
  h_.coordinator()->RunMaintenance();
  EXPECT_EQ(h_.Get("flaky")->status().attempt(), 1);
  h_.clock()->Advance(absl::Seconds(1));
  h_.coordinator()->RunMaintenance();
  job = h_.Get("flaky");
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->status().attempt(), 2);
  EXPECT_EQ(job->status().pipeline(), 2);
  std::vector<v1::Assignment> b = TakeAssignments(w);
  for (const v1::Assignment& x : b) {
    EXPECT_EQ(x.attempt(), 2);
    EXPECT_EQ(x.resume_iteration(), 0);  // no checkpoint yet
    EXPECT_EQ(x.num_devices(), 2);
  }
}

TEST_F(JobFlowTest, OutOfMemoryReplansWithASmallerBudget) {
  Workers w = StartWorkers(h_, 2);
  v1::JobSpec spec = TinySpec("hungry");
  spec.mutable_memory()->set_hbm_budget_bytes(int64_t{4} << 30);
  ASSERT_TRUE(h_.Submit(spec).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  const int64_t before = h_.Get("hungry")->status().hbm_budget_bytes();
  EXPECT_EQ(before, int64_t{4} << 30);
  ASSERT_TRUE(Fault(*w[0], a[0], v1::FAULT_OUT_OF_MEMORY, "CUDA out of memory").ok());
  absl::StatusOr<v1::Job> job = h_.Get("hungry", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RECOVERING);
  EXPECT_LT(job->status().hbm_budget_bytes(), before);
  EXPECT_GT(job->status().hbm_budget_bytes(), 0);
  EXPECT_TRUE(HasEvent(*job, "Replanned"));
  EXPECT_TRUE(w[0]->Next()->has_stop());
  EXPECT_TRUE(w[1]->Next()->has_stop());
  h_.clock()->Advance(absl::Seconds(1));
  h_.coordinator()->RunMaintenance();
  for (const v1::Assignment& x : TakeAssignments(w)) {
    EXPECT_EQ(x.attempt(), 2);
    EXPECT_EQ(x.spec().memory().hbm_budget_bytes(), job->status().hbm_budget_bytes());
  }
  // The user's spec is untouched; the plan the job runs with says why.
  job = h_.Get("hungry");
  EXPECT_EQ(job->spec().memory().hbm_budget_bytes(), int64_t{4} << 30);
}

TEST(JobRecoveryTest, RestartLimitFailsTheJobWithBackoffDoubling) {
  Harness::Config config;
  config.recovery.max_restarts = 2;
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  Workers w = StartWorkers(h, 2);
  ASSERT_TRUE(h.Submit(TinySpec("doomed")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  for (int restart = 0; restart < 2; ++restart) {
    ASSERT_TRUE(Fault(*w[0], a[0], v1::FAULT_INTERNAL, "boom").ok());
    EXPECT_EQ(h.Get("doomed")->status().state(), v1::JOB_STATE_RECOVERING);
    EXPECT_TRUE(w[0]->Next()->has_stop());
    EXPECT_TRUE(w[1]->Next()->has_stop());
    const absl::Duration backoff = absl::Seconds(1) * (1 << restart);  // 1 s, 2 s
    h.clock()->Advance(backoff - absl::Milliseconds(1));
    h.coordinator()->RunMaintenance();
    EXPECT_EQ(h.Get("doomed")->status().state(), v1::JOB_STATE_RECOVERING) << restart;
    h.clock()->Advance(absl::Milliseconds(1));
    h.coordinator()->RunMaintenance();
    EXPECT_EQ(h.Get("doomed")->status().state(), v1::JOB_STATE_RUNNING) << restart;
    a = TakeAssignments(w);
    EXPECT_EQ(a[0].attempt(), restart + 2);
  }
  ASSERT_TRUE(Fault(*w[0], a[0], v1::FAULT_INTERNAL, "boom").ok());
  absl::StatusOr<v1::Job> job = h.Get("doomed");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job->status().restarts(), 2);
  EXPECT_NE(job->status().message().find("giving up after 2 restarts"), std::string::npos)
      << job->status().message();
  EXPECT_NE(
      h.coordinator()->metrics()->Render().find("chronos_coordinator_jobs{state=\"failed\"} 1"),
      std::string::npos);
}

// A corpus too short for one window (or a shard with a bad header) fails
// every attempt the same way: the job fails at once, with no restart and
// the worker's message, and its workers are stopped and free again.
TEST_F(JobFlowTest, InputFaultFailsTheJobWithoutRestarting) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("short-corpus")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ASSERT_TRUE(Fault(*w[0], a[0], v1::FAULT_INPUT, "data.path x.txt has 12 tokens").ok());
  absl::StatusOr<v1::Job> job = h_.Get("short-corpus");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job->status().restarts(), 0);
  EXPECT_NE(job->status().message().find("has 12 tokens"), std::string::npos)
      << job->status().message();
  EXPECT_NE(job->status().message().find("not restarting"), std::string::npos)
      << job->status().message();
  EXPECT_TRUE(w[0]->Next()->has_stop());
  EXPECT_TRUE(w[1]->Next()->has_stop());
  h_.coordinator()->RunMaintenance();
  EXPECT_EQ(h_.Get("short-corpus")->status().state(), v1::JOB_STATE_FAILED);
  ASSERT_TRUE(h_.Submit(TinySpec("next")).ok());
  for (const v1::Assignment& x : TakeAssignments(w)) EXPECT_EQ(x.job(), "next");
}

// A full checkpoint disk is a storage fault: the job fails naming
// training.checkpoint_dir, with no restart and no re-plan for less memory
// (which an out-of-memory fault would get, and which frees no disk).
TEST_F(JobFlowTest, StorageFaultFailsTheJobNamingTheCheckpointDirWithoutReplanning) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("full-disk")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  const int64_t budget = h_.Get("full-disk")->status().hbm_budget_bytes();
  ASSERT_TRUE(Fault(*w[1], a[1], v1::FAULT_STORAGE,
                    "cannot write ckpt/iter-50/stage-1-dp0.ckpt.tmp.7: No space left on device")
                  .ok());
  absl::StatusOr<v1::Job> job = h_.Get("full-disk", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job->status().restarts(), 0);
  EXPECT_EQ(job->status().hbm_budget_bytes(), budget);
  EXPECT_FALSE(HasEvent(*job, "Replanned"));
  EXPECT_NE(job->status().message().find("training.checkpoint_dir is out of space"),
            std::string::npos)
      << job->status().message();
  EXPECT_TRUE(w[0]->Next()->has_stop());
  EXPECT_TRUE(w[1]->Next()->has_stop());
}

TEST_F(JobFlowTest, CancellingARecoveringJobEndsIt) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("undecided")).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ASSERT_TRUE(Fault(*w[0], a[0], v1::FAULT_DATA, "bad shard").ok());
  EXPECT_TRUE(w[0]->Next()->has_stop());
  EXPECT_TRUE(w[1]->Next()->has_stop());
  EXPECT_EQ(h_.Cancel("undecided")->status().state(), v1::JOB_STATE_CANCELLED);
  h_.clock()->Advance(absl::Seconds(5));
  h_.coordinator()->RunMaintenance();
  EXPECT_EQ(h_.Get("undecided")->status().state(), v1::JOB_STATE_CANCELLED);
  // The workers are free for the next job, whose assignment is the next
  // command they see.
  ASSERT_TRUE(h_.Submit(TinySpec("after")).ok());
  for (const v1::Assignment& x : TakeAssignments(w)) EXPECT_EQ(x.job(), "after");
}

TEST_F(JobFlowTest, DataParallelReplicasGetRanksAndThroughputAddsUp) {
  Workers w = StartWorkers(h_, 4);
  ASSERT_TRUE(h_.Submit(TinySpec("dp", /*pipeline=*/2, /*data=*/2)).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  std::set<std::pair<int, int>> stages;
  for (const v1::Assignment& x : a) stages.insert({x.data_rank(), x.device()});
  EXPECT_EQ(stages.size(), 4u);
  ReportAll(w, a, 1);
  absl::StatusOr<v1::Job> job = h_.Get("dp");
  ASSERT_TRUE(job.ok());
  EXPECT_DOUBLE_EQ(job->status().tokens_per_second(), 4000.0);
  EXPECT_EQ(job->status().devices_size(), 4);
}

// The ack says what is durable: an iteration counts for the workers only
// once its record is stored, which is when the last stage reports it. A
// report that follows a lost one is not taken: the ack names the missing
// iteration, and once the worker sends again from there every iteration is
// recorded, once, in order.
TEST_F(JobFlowTest, AcksSayWhatIsStoredAndAReportAfterALostOneIsSentAgainFromTheGap) {
  Workers w = StartWorkers(h_, 2);
  v1::JobSpec spec = TinySpec("gaps");
  spec.mutable_training()->set_iterations(6);
  ASSERT_TRUE(h_.Submit(spec).ok());
  const std::vector<v1::Assignment> a = TakeAssignments(w);
  auto report = [&](int worker, int64_t iteration, bool finished = false) {
    absl::StatusOr<v1::ProgressAck> ack = w[worker]->Progress(a[worker], iteration, finished);
    EXPECT_TRUE(ack.ok()) << ack.status();
    EXPECT_FALSE(ack.ok() && ack->stop()) << "iteration " << iteration;
    return ack.ok() ? *ack : v1::ProgressAck();
  };
  auto recorded = [&] {
    absl::StatusOr<v1::Job> job = h_.Get("gaps", /*history=*/true);
    EXPECT_TRUE(job.ok()) << job.status();
    std::vector<int64_t> out;
    if (job.ok()) {
      for (const v1::IterationRecord& r : job->iterations()) out.push_back(r.iteration());
    }
    return out;
  };

  v1::ProgressAck ack = report(0, 1);
  EXPECT_EQ(ack.durable_iteration(), 0);  // held in memory only: keep it
  EXPECT_EQ(ack.next_iteration(), 2);
  ack = report(1, 1);
  EXPECT_EQ(ack.durable_iteration(), 1);  // the record of 1 is stored
  EXPECT_EQ(ack.next_iteration(), 2);
  EXPECT_EQ(recorded(), (std::vector<int64_t>{1}));

  // Worker 1's report of 2 is lost; its 3 and 4 arrive and are refused.
  report(0, 2);
  report(0, 3);
  ack = report(1, 3);
  EXPECT_EQ(ack.durable_iteration(), 1);
  EXPECT_EQ(ack.next_iteration(), 2);
  ack = report(1, 4);
  EXPECT_EQ(ack.next_iteration(), 2);
  EXPECT_EQ(recorded(), (std::vector<int64_t>{1}));
  EXPECT_EQ(h_.Get("gaps")->status().iteration(), 1);
  // It goes back to 2, as the ack says.
  for (int64_t it = 2; it <= 4; ++it) {
    ack = report(1, it);
    EXPECT_EQ(ack.next_iteration(), it + 1);
  }
  EXPECT_EQ(ack.durable_iteration(), 3);  // worker 0 has not reported 4 yet
  EXPECT_EQ(recorded(), (std::vector<int64_t>{1, 2, 3}));
  // A duplicate (a worker re-sending its newest) changes nothing and learns
  // what is stored.
  ack = report(1, 4);
  EXPECT_EQ(ack.durable_iteration(), 3);
  EXPECT_EQ(ack.next_iteration(), 5);
  for (int64_t it = 4; it <= 6; ++it) report(0, it, it == 6);
  report(1, 5);
  // Not finished while an iteration is missing; the last report completes it.
  EXPECT_EQ(h_.Get("gaps")->status().state(), v1::JOB_STATE_RUNNING);
  ack = report(1, 6, /*finished=*/true);
  EXPECT_EQ(ack.durable_iteration(), 6);
  absl::StatusOr<v1::Job> job = h_.Get("gaps");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job->status().iteration(), 6);
  EXPECT_EQ(recorded(), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
}

// After a recovery from the checkpoint of iteration 2, attempt 2 runs 3 and
// 4 again: their records replace attempt 1's (and say attempt 2), so the
// history holds every iteration once.
TEST_F(JobFlowTest, ARedoneIterationReplacesItsRecordAndNamesTheAttemptThatRanIt) {
  Workers w = StartWorkers(h_, 2);
  v1::JobSpec spec = TinySpec("redo");
  spec.mutable_training()->set_iterations(5);
  ASSERT_TRUE(h_.Submit(spec).ok());
  std::vector<v1::Assignment> a = TakeAssignments(w);
  ReportAll(w, a, 1);
  ReportAll(w, a, 2, false, 0, /*checkpoint=*/2);
  ReportAll(w, a, 3, false, 0, /*checkpoint=*/2);
  ReportAll(w, a, 4, false, 0, /*checkpoint=*/2);
  ASSERT_TRUE(Fault(*w[1], a[1], v1::FAULT_TRANSPORT, "gloo: connection reset").ok());
  EXPECT_TRUE(w[0]->Next()->has_stop());
  EXPECT_TRUE(w[1]->Next()->has_stop());
  h_.clock()->Advance(absl::Seconds(1));
  h_.coordinator()->RunMaintenance();
  std::vector<v1::Assignment> b = TakeAssignments(w);
  for (const v1::Assignment& x : b) EXPECT_EQ(x.resume_iteration(), 2);
  ReportAll(w, b, 3);
  absl::StatusOr<v1::Job> mid = h_.Get("redo", true);
  ASSERT_TRUE(mid.ok());
  ASSERT_EQ(mid->iterations_size(), 4);  // 4 is still attempt 1's
  EXPECT_EQ(mid->iterations(2).attempt(), 2);
  EXPECT_EQ(mid->iterations(3).attempt(), 1);
  ReportAll(w, b, 4);
  ReportAll(w, b, 5, /*finished=*/true);
  absl::StatusOr<v1::Job> job = h_.Get("redo", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(job->iterations_size(), 5);
  std::set<int64_t> sequences;
  for (int i = 0; i < 5; ++i) {
    const v1::IterationRecord& r = job->iterations(i);
    EXPECT_EQ(r.iteration(), i + 1);
    EXPECT_EQ(r.attempt(), i < 2 ? 1 : 2) << "iteration " << r.iteration();
    EXPECT_TRUE(sequences.insert(r.sequence()).second);
  }
  // Replayed from the start, the history holds each iteration once too.
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_name("redo");
  auto reader = h_.control()->WatchJob(&ctx, req);
  std::vector<int64_t> replayed;
  v1::JobUpdate u;
  while (reader->Read(&u)) {
    if (u.has_iteration()) replayed.push_back(u.iteration().iteration());
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(replayed, (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

TEST_F(JobFlowTest, JobsWaitForEnoughWorkersFirstComeFirstServed) {
  Workers w = StartWorkers(h_, 1);
  ASSERT_EQ(h_.Submit(TinySpec("big"))->status().state(), v1::JOB_STATE_PENDING);
  Workers more = StartWorkers(h_, 1, "late");
  // The second worker's attach admits the waiting job.
  EXPECT_EQ(h_.Get("big")->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_TRUE(w[0]->Next()->has_assign());
  EXPECT_TRUE(more[0]->Next()->has_assign());
}

TEST_F(JobFlowTest, GetScheduleAndPlanJobServeThePlanner) {
  Workers w = StartWorkers(h_, 2);
  ASSERT_TRUE(h_.Submit(TinySpec("planned")).ok());
  v1::GetScheduleRequest req;
  req.set_name("planned");
  v1::GetScheduleResponse resp;
  auto ctx = h_.Context();
  ASSERT_TRUE(h_.control()->GetSchedule(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.schedule().devices_size(), 2);
  EXPECT_EQ(resp.schedule().kind(), "1f1b");
  EXPECT_TRUE(resp.plan().fits());

  v1::PlanJobRequest plan;
  *plan.mutable_spec() = TinySpec("whatif");
  plan.add_schedules("1f1b");
  plan.add_schedules("gpipe");
  v1::PlanReport report;
  auto ctx2 = h_.Context();
  grpc::Status s = h_.control()->PlanJob(ctx2.get(), plan, &report);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(report.plans_size(), 2);
  plan.mutable_spec()->mutable_model()->set_layers(0);
  auto ctx3 = h_.Context();
  s = h_.control()->PlanJob(ctx3.get(), plan, &report);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("model.layers"), std::string::npos);
}

TEST_F(JobFlowTest, ShutdownEndsOpenStreamsPromptly) {
  Workers w = StartWorkers(h_, 1);
  ASSERT_TRUE(h_.Submit(TinySpec("forever")).ok());  // pending: needs 2
  grpc::ClientContext watch_ctx;
  v1::WatchJobRequest req;
  req.set_name("forever");
  auto reader = h_.control()->WatchJob(&watch_ctx, req);
  v1::JobUpdate u;
  ASSERT_TRUE(reader->Read(&u));  // the stream is live
  const absl::Time start = absl::Now();
  h_.Stop(/*grace=*/absl::Seconds(30));
  // Far less than the grace period: streams end on their own.
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  while (reader->Read(&u)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  absl::StatusOr<grpc::Status> end = w[0]->WaitStreamEnd();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace chronos::coordinator::testing

namespace chronos::coordinator::testing {
namespace {

// gRPC's default SO_REUSEPORT would let a second coordinator bind the same
// address and take half of the new connections (and their bearer tokens).
TEST(ListenTest, ASecondCoordinatorCannotShareTheAddressAndSaysWhichOne) {
  Harness first{Harness::Config()};
  ASSERT_TRUE(first.Start().ok());
  CoordinatorOptions o;
  o.listen = first.coordinator()->grpc_address();
  o.metrics_listen = "";
  absl::StatusOr<std::unique_ptr<Coordinator>> second = Coordinator::Create(o);
  ASSERT_TRUE(second.ok()) << second.status();
  const absl::Status s = (*second)->Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find(o.listen), std::string::npos) << s;
  // The first one still answers.
  EXPECT_TRUE(first.Submit(TinySpec("still-mine")).ok());
}

}  // namespace
}  // namespace chronos::coordinator::testing

namespace chronos::coordinator::testing {
namespace {

// With allowed roots, a spec naming a path outside them is refused at
// submission naming the field, before any worker hears of it; an accepted
// job's assignments carry the roots so each worker checks again.
TEST(AllowedRootsTest, PathsOutsideTheRootsAreRefusedAndWorkersGetTheRoots) {
  Harness::Config config;
  config.allowed_data_roots = {"/srv/data"};
  config.allowed_checkpoint_roots = {"/srv/ckpt"};
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  Workers w = StartWorkers(h, 2);
  v1::JobSpec spec = TinySpec("rooted");
  spec.mutable_data()->set_path("/etc/shadow");
  spec.mutable_training()->set_checkpoint_dir("/srv/ckpt/rooted");
  absl::StatusOr<v1::Job> job = h.Submit(spec);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
  EXPECT_NE(job.status().message().find("data.path"), std::string::npos) << job.status();
  spec.mutable_data()->set_path("/srv/data/corpus.txt");
  spec.mutable_training()->set_checkpoint_dir("./checkpoints");  // relative: unknown where
  job = h.Submit(spec);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
  EXPECT_NE(job.status().message().find("training.checkpoint_dir"), std::string::npos)
      << job.status();
  spec.mutable_training()->set_checkpoint_dir("/srv/ckpt/rooted");
  ASSERT_TRUE(h.Submit(spec).ok());
  for (const v1::Assignment& a : TakeAssignments(w)) {
    ASSERT_EQ(a.allowed_data_roots_size(), 1);
    EXPECT_EQ(a.allowed_data_roots(0), "/srv/data");
    ASSERT_EQ(a.allowed_checkpoint_roots_size(), 1);
    EXPECT_EQ(a.allowed_checkpoint_roots(0), "/srv/ckpt");
  }
}

}  // namespace
}  // namespace chronos::coordinator::testing
