#include "coordinator/control_service.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/handler_guard.h"
#include "core/job_spec.h"
#include "core/planner.h"
#include "rpc/limits.h"

namespace chronos::coordinator {
namespace {

constexpr int kMaxPlanSchedules = 32;

absl::StatusOr<v1::PlanReport> Plan(const v1::PlanJobRequest& req) {
  if (!req.has_spec()) return absl::InvalidArgumentError("spec is required");
  const size_t size = req.spec().ByteSizeLong();
  if (size > static_cast<size_t>(rpc::kMaxJobSpecBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec is ", size, " bytes; the limit is ", rpc::kMaxJobSpecBytes, " bytes"));
  }
  if (req.hbm_budget_bytes() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hbm_budget_bytes must be >= 0 (got ", req.hbm_budget_bytes(), ")"));
  }
  if (req.schedules_size() > kMaxPlanSchedules) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxPlanSchedules, " schedules per request"));
  }
  v1::JobSpec spec = req.spec();
  if (!req.profile().empty()) {
    spec.mutable_device()->set_profile(req.profile());
    spec.mutable_device()->clear_custom();
  }
  ApplyJobSpecDefaults(&spec);
  absl::Status valid = ValidateJobSpec(spec);
  if (!valid.ok()) return valid;
  PlanOptions options;
  options.hbm_budget_bytes = req.hbm_budget_bytes();
  options.include_decisions = req.include_decisions();
  std::vector<std::string> schedules(req.schedules().begin(), req.schedules().end());
  absl::StatusOr<v1::PlanReport> report =
      BuildPlanReport(spec, schedules, req.max_layers(), options);
  if (!report.ok() && report.status().code() != absl::StatusCode::kInternal) {
    return absl::InvalidArgumentError(report.status().message());
  }
  return report;
}

}  // namespace

grpc::Status ControlServiceImpl::SubmitJob(grpc::ServerContext* ctx,
                                           const v1::SubmitJobRequest* req, v1::Job* resp) {
  return Guarded(*ctx, [&] { return Into(jobs_->SubmitJob(*req), resp); });
}

grpc::Status ControlServiceImpl::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                                        v1::Job* resp) {
  return Guarded(*ctx, [&] { return Into(jobs_->GetJob(*req), resp); });
}

grpc::Status ControlServiceImpl::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                                          v1::ListJobsResponse* resp) {
  return Guarded(*ctx, [&] { return Into(jobs_->ListJobs(*req), resp); });
}

grpc::Status ControlServiceImpl::CancelJob(grpc::ServerContext* ctx,
                                           const v1::CancelJobRequest* req, v1::Job* resp) {
  return Guarded(*ctx, [&] { return Into(jobs_->CancelJob(req->name()), resp); });
}

grpc::Status ControlServiceImpl::DeleteJob(grpc::ServerContext* ctx,
                                           const v1::DeleteJobRequest* req, v1::Job* resp) {
  return Guarded(*ctx, [&] { return Into(jobs_->DeleteJob(req->name()), resp); });
}

grpc::Status ControlServiceImpl::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                                          grpc::ServerWriter<v1::JobUpdate>* writer) {
  return Guarded(*ctx, [&] {
    return jobs_->WatchJob(
        *req, [&](const v1::JobUpdate& update) { return writer->Write(update); },
        [&] { return ctx->IsCancelled(); });
  });
}

grpc::Status ControlServiceImpl::UpdatePolicy(grpc::ServerContext* ctx,
                                              const v1::UpdatePolicyRequest* req, v1::Job* resp) {
  return Guarded(*ctx, [&] { return Into(jobs_->UpdatePolicy(*req), resp); });
}

grpc::Status ControlServiceImpl::PlanJob(grpc::ServerContext* ctx, const v1::PlanJobRequest* req,
                                         v1::PlanReport* resp) {
  return Guarded(*ctx, [&] { return Into(Plan(*req), resp); });
}

grpc::Status ControlServiceImpl::GetSchedule(grpc::ServerContext* ctx,
                                             const v1::GetScheduleRequest* req,
                                             v1::GetScheduleResponse* resp) {
  return Guarded(*ctx, [&] { return Into(jobs_->GetSchedule(req->name()), resp); });
}

grpc::Status ControlServiceImpl::ListWorkers(grpc::ServerContext* ctx,
                                             const v1::ListWorkersRequest* req,
                                             v1::ListWorkersResponse* resp) {
  return Guarded(*ctx, [&] {
    const std::map<std::string, int> stages = jobs_->RunningStages();
    for (v1::WorkerStatus& w : workers_->List()) {
      auto it = stages.find(w.worker_id());
      if (it != stages.end() && !w.job().empty()) w.set_device(it->second);
      *resp->add_workers() = std::move(w);
    }
    return absl::OkStatus();
  });
}

}  // namespace chronos::coordinator
