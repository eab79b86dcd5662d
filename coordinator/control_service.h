// ControlService (proto/chronos/v1/control.proto): what chronosctl calls.
// A thin adapter: checks the auth verdict, validates what the proto cannot,
// delegates to the JobController (jobs), WorkerRegistry (workers) or the
// core planner (PlanJob), and converts statuses. Handlers never throw and
// never block without bound. Thread-safe.
#ifndef CHRONOS_COORDINATOR_CONTROL_SERVICE_H_
#define CHRONOS_COORDINATOR_CONTROL_SERVICE_H_

#include "chronos/v1/control.grpc.pb.h"
#include "coordinator/job_controller.h"
#include "coordinator/worker_registry.h"

namespace chronos::coordinator {

class ControlServiceImpl final : public v1::ControlService::Service {
 public:
  // Borrowed; must outlive the service.
  ControlServiceImpl(JobController* jobs, WorkerRegistry* workers)
      : jobs_(jobs), workers_(workers) {}

  grpc::Status SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                         v1::Job* resp) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                      v1::Job* resp) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                        v1::ListJobsResponse* resp) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req,
                         v1::Job* resp) override;
  grpc::Status DeleteJob(grpc::ServerContext* ctx, const v1::DeleteJobRequest* req,
                         v1::Job* resp) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                        grpc::ServerWriter<v1::JobUpdate>* writer) override;
  grpc::Status UpdatePolicy(grpc::ServerContext* ctx, const v1::UpdatePolicyRequest* req,
                            v1::Job* resp) override;
  grpc::Status PlanJob(grpc::ServerContext* ctx, const v1::PlanJobRequest* req,
                       v1::PlanReport* resp) override;
  grpc::Status GetSchedule(grpc::ServerContext* ctx, const v1::GetScheduleRequest* req,
                           v1::GetScheduleResponse* resp) override;
  grpc::Status ListWorkers(grpc::ServerContext* ctx, const v1::ListWorkersRequest* req,
                           v1::ListWorkersResponse* resp) override;

 private:
  JobController* const jobs_;
  WorkerRegistry* const workers_;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_CONTROL_SERVICE_H_
