// A hand-written fake of the coordinator's ControlService for chronosctl
// tests: it records the requests it gets, answers from a small in-memory
// job table, and streams a scripted list of updates from WatchJob. Served
// in-process on 127.0.0.1:0. Thread-safe (gRPC calls handlers on its own
// threads).
#ifndef CHRONOS_TESTS_CLIENT_FAKE_CONTROL_SERVICE_H_
#define CHRONOS_TESTS_CLIENT_FAKE_CONTROL_SERVICE_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "chronos/v1/control.grpc.pb.h"

namespace chronos::client::testing {

class FakeControlService final : public v1::ControlService::Service {
 public:
  // Every call must carry `authorization: Bearer <token>` when set.
  void RequireToken(std::string token) {
    absl::MutexLock l(&mu_);
    token_ = std::move(token);
  }
  void AddJob(const v1::Job& job) {
    absl::MutexLock l(&mu_);
    jobs_[job.metadata().name()] = job;
  }
  // What WatchJob streams (for any job), in order; then it returns OK.
  void SetWatchScript(std::vector<v1::JobUpdate> updates) {
    absl::MutexLock l(&mu_);
    watch_script_ = std::move(updates);
  }
  // Called after each streamed update (e.g. to raise a signal mid-watch).
  void OnWatchUpdate(std::function<void(int)> f) {
    absl::MutexLock l(&mu_);
    on_watch_update_ = std::move(f);
  }
  // Called (outside the lock) on every ListWorkers.
  void OnListWorkers(std::function<void()> f) {
    absl::MutexLock l(&mu_);
    on_list_workers_ = std::move(f);
  }
  void SetWorkers(v1::ListWorkersResponse workers) {
    absl::MutexLock l(&mu_);
    workers_ = std::move(workers);
  }
  // A submitted job becomes this job (name, status, history) when set: lets
  // `local run` see a job that finishes.
  void SetSubmitOutcome(v1::Job job) {
    absl::MutexLock l(&mu_);
    submit_outcome_ = std::move(job);
    has_submit_outcome_ = true;
  }

  v1::SubmitJobRequest last_submit() {
    absl::MutexLock l(&mu_);
    return last_submit_;
  }
  v1::GetJobRequest last_get() {
    absl::MutexLock l(&mu_);
    return last_get_;
  }
  v1::ListJobsRequest last_list() {
    absl::MutexLock l(&mu_);
    return last_list_;
  }
  v1::CancelJobRequest last_cancel() {
    absl::MutexLock l(&mu_);
    return last_cancel_;
  }
  v1::UpdatePolicyRequest last_update() {
    absl::MutexLock l(&mu_);
    return last_update_;
  }
  v1::WatchJobRequest last_watch() {
    absl::MutexLock l(&mu_);
    return last_watch_;
  }
  std::vector<std::string> authorizations() {
    absl::MutexLock l(&mu_);
    return authorizations_;
  }
  int calls() {
    absl::MutexLock l(&mu_);
    return calls_;
  }

  grpc::Status SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                         v1::Job* resp) override {
    absl::MutexLock l(&mu_);
    if (grpc::Status s = Auth(ctx); !s.ok()) return s;
    last_submit_ = *req;
    v1::Job job;
    if (has_submit_outcome_) {
      job = submit_outcome_;
    } else {
      job.mutable_status()->set_state(v1::JOB_STATE_PLANNING);
    }
    job.mutable_metadata()->set_name(req->spec().name());
    job.mutable_metadata()->set_request_id(req->request_id());
    job.mutable_metadata()->set_generation(1);
    *job.mutable_spec() = req->spec();
    jobs_[req->spec().name()] = job;
    *resp = job;
    resp->clear_iterations();
    resp->clear_events();
    if (has_submit_outcome_) resp->mutable_status()->set_state(v1::JOB_STATE_PLANNING);
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                      v1::Job* resp) override {
    absl::MutexLock l(&mu_);
    if (grpc::Status s = Auth(ctx); !s.ok()) return s;
    last_get_ = *req;
    auto it = jobs_.find(req->name());
    if (it == jobs_.end()) return NotFound(req->name());
    *resp = it->second;
    if (!req->include_events()) resp->clear_events();
    if (!req->include_iterations()) resp->clear_iterations();
    return grpc::Status::OK;
  }

  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                        v1::ListJobsResponse* resp) override {
    absl::MutexLock l(&mu_);
    if (grpc::Status s = Auth(ctx); !s.ok()) return s;
    last_list_ = *req;
    for (const auto& [name, job] : jobs_) {
      if (req->state() != v1::JOB_STATE_UNSPECIFIED && job.status().state() != req->state()) {
        continue;
      }
      v1::Job* j = resp->add_jobs();
      *j = job;
      j->clear_events();
      j->clear_iterations();
    }
    resp->set_resource_version("42");
    return grpc::Status::OK;
  }

  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req,
                         v1::Job* resp) override {
    absl::MutexLock l(&mu_);
    if (grpc::Status s = Auth(ctx); !s.ok()) return s;
    last_cancel_ = *req;
    auto it = jobs_.find(req->name());
    if (it == jobs_.end()) return NotFound(req->name());
    it->second.mutable_status()->set_state(v1::JOB_STATE_CANCELLED);
    *resp = it->second;
    return grpc::Status::OK;
  }

  grpc::Status UpdatePolicy(grpc::ServerContext* ctx, const v1::UpdatePolicyRequest* req,
                            v1::Job* resp) override {
    absl::MutexLock l(&mu_);
    if (grpc::Status s = Auth(ctx); !s.ok()) return s;
    last_update_ = *req;
    auto it = jobs_.find(req->name());
    if (it == jobs_.end()) return NotFound(req->name());
    if (req->expected_generation() != 0 &&
        req->expected_generation() != it->second.metadata().generation()) {
      return grpc::Status(grpc::StatusCode::ABORTED, "generation changed");
    }
    v1::JobMetadata* md = it->second.mutable_metadata();
    md->set_generation(md->generation() + 1);
    *resp = it->second;
    return grpc::Status::OK;
  }

  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                        grpc::ServerWriter<v1::JobUpdate>* writer) override {
    std::vector<v1::JobUpdate> script;
    std::function<void(int)> hook;
    {
      absl::MutexLock l(&mu_);
      if (grpc::Status s = Auth(ctx); !s.ok()) return s;
      last_watch_ = *req;
      if (jobs_.find(req->name()) == jobs_.end()) return NotFound(req->name());
      script = watch_script_;
      hook = on_watch_update_;
    }
    int i = 0;
    for (const v1::JobUpdate& u : script) {
      if (u.sequence() <= req->since_sequence()) continue;
      if (ctx->IsCancelled() || !writer->Write(u)) break;
      if (hook) hook(i);
      ++i;
    }
    // A server keeping the stream open until the client leaves, as a real
    // one does while the job runs.
    while (hook && !ctx->IsCancelled()) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return grpc::Status::OK;
  }

  grpc::Status ListWorkers(grpc::ServerContext* ctx, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse* resp) override {
    std::function<void()> hook;
    {
      absl::MutexLock l(&mu_);
      if (grpc::Status s = Auth(ctx); !s.ok()) return s;
      *resp = workers_;
      hook = on_list_workers_;
    }
    if (hook) hook();
    return grpc::Status::OK;
  }

  grpc::Status DeleteJob(grpc::ServerContext* ctx, const v1::DeleteJobRequest* req,
                         v1::Job* resp) override {
    absl::MutexLock l(&mu_);
    if (grpc::Status s = Auth(ctx); !s.ok()) return s;
    auto it = jobs_.find(req->name());
    if (it == jobs_.end()) return NotFound(req->name());
    *resp = it->second;
    jobs_.erase(it);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Auth(grpc::ServerContext* ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++calls_;
    std::string presented;
    auto it = ctx->client_metadata().find("authorization");
    if (it != ctx->client_metadata().end()) presented.assign(it->second.data(), it->second.size());
    authorizations_.push_back(presented);
    if (!token_.empty() && presented != absl::StrCat("Bearer ", token_)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token");
    }
    return grpc::Status::OK;
  }
  static grpc::Status NotFound(const std::string& name) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("job \"", name, "\" not found"));
  }

  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::JobUpdate> watch_script_ ABSL_GUARDED_BY(mu_);
  std::function<void(int)> on_watch_update_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_list_workers_ ABSL_GUARDED_BY(mu_);
  v1::ListWorkersResponse workers_ ABSL_GUARDED_BY(mu_);
  v1::Job submit_outcome_ ABSL_GUARDED_BY(mu_);
  bool has_submit_outcome_ ABSL_GUARDED_BY(mu_) = false;
  v1::SubmitJobRequest last_submit_ ABSL_GUARDED_BY(mu_);
  v1::GetJobRequest last_get_ ABSL_GUARDED_BY(mu_);
  v1::ListJobsRequest last_list_ ABSL_GUARDED_BY(mu_);
  v1::CancelJobRequest last_cancel_ ABSL_GUARDED_BY(mu_);
  v1::UpdatePolicyRequest last_update_ ABSL_GUARDED_BY(mu_);
  v1::WatchJobRequest last_watch_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> authorizations_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// The fake served on 127.0.0.1 at a free port.
class FakeServer {
 public:
  FakeServer() {
    // The standard health service, as the coordinator has; a process-wide
    // switch read when a server is built.
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~FakeServer() { server_->Shutdown(std::chrono::system_clock::now()); }
  FakeControlService& service() { return service_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  FakeControlService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace chronos::client::testing

#endif  // CHRONOS_TESTS_CLIENT_FAKE_CONTROL_SERVICE_H_
