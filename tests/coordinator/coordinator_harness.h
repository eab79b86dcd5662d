// Test scaffolding for the coordinator: an in-process Coordinator on
// 127.0.0.1:0 with a fake clock, typed stubs that carry the token, and
// FakeWorker, a worker daemon reduced to its WorkerService calls (register,
// attach, read commands, report progress) so the control flow runs without
// Torch. All waits are bounded waits on conditions; nothing sleeps.
#ifndef CHRONOS_TESTS_COORDINATOR_COORDINATOR_HARNESS_H_
#define CHRONOS_TESTS_COORDINATOR_COORDINATOR_HARNESS_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/control.grpc.pb.h"
#include "chronos/v1/worker.grpc.pb.h"
#include "coordinator/clock.h"
#include "coordinator/coordinator.h"
#include "rpc/auth.h"
#include "rpc/credentials.h"
#include "rpc/status_convert.h"

namespace chronos::coordinator::testing {

// Generous bound for "this should happen promptly" waits.
inline constexpr absl::Duration kWait = absl::Seconds(20);

// A small spec the cpu profile plans in milliseconds and fits easily.
inline v1::JobSpec TinySpec(const std::string& name, int pipeline = 2, int data = 1) {
  v1::JobSpec spec;
  spec.set_name(name);
  v1::ModelSpec* m = spec.mutable_model();
  m->set_layers(4);
  m->set_hidden(64);
  m->set_heads(4);
  m->set_ffn_hidden(172);
  m->set_vocab(256);
  m->set_seq_len(32);
  spec.mutable_data()->set_path("data.txt");
  v1::TrainingSpec* t = spec.mutable_training();
  t->set_iterations(3);
  t->set_micro_batch_size(2);
  t->set_microbatches(4);
  t->set_lr(1e-3);
  spec.mutable_parallel()->set_pipeline(pipeline);
  spec.mutable_parallel()->set_data(data);
  spec.mutable_schedule()->set_kind("1f1b");
  spec.mutable_device()->set_profile("cpu");
  return spec;
}

// The iterations a job's history records (GetJob with history).
inline std::set<int64_t> RecordedIterations(const v1::Job& job) {
  std::set<int64_t> out;
  for (const v1::IterationRecord& r : job.iterations()) out.insert(r.iteration());
  return out;
}

inline void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + kWait));
}

class Harness {
 public:
  struct Config {
    std::string token;
    std::string data_dir;
    absl::Duration heartbeat_interval = absl::Seconds(5);
    int heartbeat_misses = 3;
    bool serve_metrics = false;
    // Fake-clock time: tests advance past them explicitly.
    RecoveryOptions recovery;
    std::shared_ptr<Replanner> replanner;  // null = the standard one
    std::vector<std::string> allowed_data_roots;
    std::vector<std::string> allowed_checkpoint_roots;
    // 0: a submitted job is planned inside SubmitJob, so it comes back
    // PENDING (or RUNNING) as deterministically as before planning moved to
    // the background; tests of the background planner ask for a thread.
    int planner_threads = 0;
    // Fake-clock time, like the recovery options.
    absl::Duration plan_deadline = absl::Minutes(5);
  };

  explicit Harness(Config config) : config_(std::move(config)) {}
  ~Harness() { Stop(); }

  absl::Status Start() {
    CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.metrics_listen = config_.serve_metrics ? "127.0.0.1:0" : "";
    o.data_dir = config_.data_dir;
    o.token = config_.token;
    o.heartbeat_interval = config_.heartbeat_interval;
    o.heartbeat_misses = config_.heartbeat_misses;
    o.recovery = config_.recovery;
    o.replanner = config_.replanner;
    o.allowed_data_roots = config_.allowed_data_roots;
    o.allowed_checkpoint_roots = config_.allowed_checkpoint_roots;
    o.planning.threads = config_.planner_threads;
    o.planning.deadline = config_.plan_deadline;
    o.stream_poll_interval = absl::Milliseconds(50);
    // Maintenance is driven by the tests (RunMaintenance) with the fake
    // clock; the background pass only admits jobs.
    o.maintenance_interval = absl::Seconds(1);
    o.clock = &clock_;
    absl::StatusOr<std::unique_ptr<Coordinator>> c = Coordinator::Create(o);
    if (!c.ok()) return c.status();
    coordinator_ = std::move(*c);
    absl::Status s = coordinator_->Start();
    if (!s.ok()) return s;
    rpc::ChannelOptions co;
    co.target = coordinator_->grpc_address();
    absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = rpc::CreateChannel(co);
    if (!ch.ok()) return ch.status();
    channel_ = *ch;
    control_ = v1::ControlService::NewStub(channel_);
    return absl::OkStatus();
  }

  void Stop(absl::Duration grace = absl::Seconds(5)) {
    if (coordinator_) coordinator_->Shutdown(grace);
    coordinator_.reset();
  }

  Coordinator* coordinator() { return coordinator_.get(); }
  FakeClock* clock() { return &clock_; }
  const std::shared_ptr<grpc::Channel>& channel() { return channel_; }
  const std::string& token() const { return config_.token; }

  // A context with the harness token and a deadline.
  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    rpc::AddBearerToken(config_.token, ctx.get());
    SetDeadline(ctx.get());
    return ctx;
  }

  absl::StatusOr<v1::Job> Submit(const v1::JobSpec& spec, const std::string& request_id = "") {
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    req.set_request_id(request_id);
    v1::Job job;
    auto ctx = Context();
    grpc::Status s = control_->SubmitJob(ctx.get(), req, &job);
    if (!s.ok()) return rpc::FromGrpcStatus(s);
    return job;
  }

  absl::StatusOr<v1::Job> Get(const std::string& name, bool history = false) {
    v1::GetJobRequest req;
    req.set_name(name);
    req.set_include_events(history);
    req.set_include_iterations(history);
    v1::Job job;
    auto ctx = Context();
    grpc::Status s = control_->GetJob(ctx.get(), req, &job);
    if (!s.ok()) return rpc::FromGrpcStatus(s);
    return job;
  }

  absl::StatusOr<v1::Job> Cancel(const std::string& name) {
    v1::CancelJobRequest req;
    req.set_name(name);
    v1::Job job;
    auto ctx = Context();
    grpc::Status s = control_->CancelJob(ctx.get(), req, &job);
    if (!s.ok()) return rpc::FromGrpcStatus(s);
    return job;
  }

  absl::StatusOr<v1::ListWorkersResponse> Workers() {
    v1::ListWorkersResponse resp;
    auto ctx = Context();
    grpc::Status s = control_->ListWorkers(ctx.get(), v1::ListWorkersRequest(), &resp);
    if (!s.ok()) return rpc::FromGrpcStatus(s);
    return resp;
  }

  v1::ControlService::Stub* control() { return control_.get(); }

 private:
  Config config_;
  FakeClock clock_;
  std::unique_ptr<Coordinator> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ControlService::Stub> control_;
};

class FakeWorker {
 public:
  FakeWorker(std::shared_ptr<grpc::Channel> channel, std::string name, std::string token)
      : stub_(v1::WorkerService::NewStub(channel)),
        name_(std::move(name)),
        token_(std::move(token)) {}
  ~FakeWorker() { Detach(); }

  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    rpc::AddBearerToken(token_, ctx.get());
    SetDeadline(ctx.get());
    return ctx;
  }

  absl::Status Register(const std::string& previous_id = "") {
    v1::RegisterRequest req;
    req.mutable_info()->set_name(name_);
    req.mutable_info()->set_device("cpu");
    req.mutable_info()->set_hbm_bytes(8LL << 30);
    req.set_previous_worker_id(previous_id);
    v1::RegisterResponse resp;
    auto ctx = Context();
    grpc::Status s = stub_->Register(ctx.get(), req, &resp);
    if (!s.ok()) return rpc::FromGrpcStatus(s);
    id_ = resp.worker_id();
    return absl::OkStatus();
  }

  // Opens the Attach stream and returns once the coordinator has it (its
  // initial metadata arrived); commands are then read in the background.
  absl::Status Attach() {
    Detach();
    attach_ctx_ = std::make_unique<grpc::ClientContext>();
    rpc::AddBearerToken(token_, attach_ctx_.get());
    v1::AttachRequest req;
    req.set_worker_id(id_);
    reader_ = stub_->Attach(attach_ctx_.get(), req);
    reader_->WaitForInitialMetadata();
    {
      absl::MutexLock lock(&mu_);
      stream_done_ = false;
    }
    thread_ = std::thread([this] {
      v1::WorkerCommand cmd;
      while (reader_->Read(&cmd)) {
        absl::MutexLock lock(&mu_);
        commands_.push_back(cmd);
      }
      grpc::Status s = reader_->Finish();
      absl::MutexLock lock(&mu_);
      stream_status_ = s;
      stream_done_ = true;
    });
    // A refused stream (unknown worker, ...) shows in WaitStreamEnd.
    return absl::OkStatus();
  }

  void Detach() {
    if (attach_ctx_) attach_ctx_->TryCancel();
    if (thread_.joinable()) thread_.join();
    reader_.reset();
    attach_ctx_.reset();
  }

  // The next command, waiting at most `timeout`.
  absl::StatusOr<v1::WorkerCommand> Next(absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    // Conditions run with mu_ held; the analysis cannot see that.
    auto ready = [this] {
      mu_.AssertHeld();
      return !commands_.empty() || stream_done_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (commands_.empty()) {
      if (stream_done_) return rpc::FromGrpcStatus(stream_status_);
      return absl::DeadlineExceededError("no command");
    }
    v1::WorkerCommand cmd = std::move(commands_.front());
    commands_.pop_front();
    return cmd;
  }

  // The status the Attach stream ended with, once it ends.
  absl::StatusOr<grpc::Status> WaitStreamEnd(absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto done = [this] {
      mu_.AssertHeld();
      return stream_done_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
      return absl::DeadlineExceededError("stream still open");
    }
    return stream_status_;
  }

  absl::StatusOr<v1::ProgressAck> Progress(const v1::Assignment& a, int64_t iteration,
                                           bool finished = false, int64_t generation = 0,
                                           int64_t checkpoint = 0) {
    v1::ProgressReport r;
    r.set_worker_id(id_);
    r.set_job(a.job());
    r.set_attempt(a.attempt());
    r.set_iteration(iteration);
    const bool last = a.device() == a.num_devices() - 1;
    r.set_has_loss(last);
    if (last) r.set_loss(5.0 - iteration);
    r.set_tokens(1000);
    r.mutable_device()->set_iteration_seconds(0.5);
    r.set_lr(1e-3);
    r.mutable_device()->set_peak_activation_bytes(1000 + a.device());
    r.set_policy_generation(generation != 0 ? generation : a.policy_generation());
    r.set_offload_ratio(a.offload_ratio());
    r.set_finished(finished);
    r.set_checkpoint_iteration(checkpoint);
    v1::ProgressAck ack;
    auto ctx = Context();
    grpc::Status s = stub_->ReportProgress(ctx.get(), r, &ack);
    if (!s.ok()) return rpc::FromGrpcStatus(s);
    return ack;
  }

  v1::WorkerService::Stub* stub() { return stub_.get(); }
  const std::string& id() const { return id_; }

 private:
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::string name_;
  std::string token_;
  std::string id_;
  std::unique_ptr<grpc::ClientContext> attach_ctx_;
  std::unique_ptr<grpc::ClientReader<v1::WorkerCommand>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::deque<v1::WorkerCommand> commands_ ABSL_GUARDED_BY(mu_);
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status stream_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::coordinator::testing

#endif  // CHRONOS_TESTS_COORDINATOR_COORDINATOR_HARNESS_H_
