// WorkerService (proto/chronos/v1/worker.proto): what worker daemons call.
// A thin adapter over the WorkerRegistry (register, heartbeat, the Attach
// stream's outbox), the JobController (progress, faults, re-sent
// assignments) and the KvStore (transport rendezvous). Streaming handlers
// (Attach, StoreGet) wait in bounded slices and re-check cancellation and
// shutdown between them, so server shutdown never hangs on them.
// Thread-safe.
#ifndef CHRONOS_COORDINATOR_WORKER_SERVICE_H_
#define CHRONOS_COORDINATOR_WORKER_SERVICE_H_

#include <atomic>

#include "absl/time/time.h"
#include "chronos/v1/worker.grpc.pb.h"
#include "coordinator/job_controller.h"
#include "coordinator/kv_store.h"
#include "coordinator/worker_registry.h"

namespace chronos::coordinator {

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  struct Options {
    absl::Duration heartbeat_interval = absl::Seconds(5);
    absl::Duration poll_interval = absl::Milliseconds(200);
    absl::Duration max_store_wait = absl::Minutes(10);
  };
  // Borrowed; must outlive the service.
  WorkerServiceImpl(WorkerRegistry* workers, JobController* jobs, KvStore* kv, Options options)
      : workers_(workers), jobs_(jobs), kv_(kv), options_(options) {}

  // Ends Attach streams and store waits; new ones fail with UNAVAILABLE.
  void Shutdown() { shutting_down_ = true; }

  grpc::Status Register(grpc::ServerContext* ctx, const v1::RegisterRequest* req,
                        v1::RegisterResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override;
  grpc::Status Attach(grpc::ServerContext* ctx, const v1::AttachRequest* req,
                      grpc::ServerWriter<v1::WorkerCommand>* writer) override;
  grpc::Status ReportProgress(grpc::ServerContext* ctx, const v1::ProgressReport* req,
                              v1::ProgressAck* resp) override;
  grpc::Status ReportFault(grpc::ServerContext* ctx, const v1::FaultReport* req,
                           v1::FaultAck* resp) override;
  grpc::Status StoreSet(grpc::ServerContext* ctx, const v1::StoreSetRequest* req,
                        v1::StoreSetResponse* resp) override;
  grpc::Status StoreGet(grpc::ServerContext* ctx, const v1::StoreGetRequest* req,
                        v1::StoreGetResponse* resp) override;
  grpc::Status StoreAdd(grpc::ServerContext* ctx, const v1::StoreAddRequest* req,
                        v1::StoreAddResponse* resp) override;
  grpc::Status StoreCheck(grpc::ServerContext* ctx, const v1::StoreCheckRequest* req,
                          v1::StoreCheckResponse* resp) override;
  grpc::Status StoreDelete(grpc::ServerContext* ctx, const v1::StoreDeleteRequest* req,
                           v1::StoreDeleteResponse* resp) override;

 private:
  WorkerRegistry* const workers_;
  JobController* const jobs_;
  KvStore* const kv_;
  const Options options_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_WORKER_SERVICE_H_
