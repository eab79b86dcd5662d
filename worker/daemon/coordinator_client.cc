#include "worker/daemon/coordinator_client.h"

#include <utility>

#include "rpc/auth.h"
#include "rpc/status_convert.h"

namespace chronos::worker {

CoordinatorClient::CoordinatorClient(std::shared_ptr<grpc::Channel> channel, std::string token,
                                     absl::Duration rpc_timeout)
    : stub_(v1::WorkerService::NewStub(channel)),
      token_(std::move(token)),
      rpc_timeout_(rpc_timeout) {}

std::unique_ptr<grpc::ClientContext> CoordinatorClient::Context(absl::Duration timeout) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  rpc::AddBearerToken(token_, ctx.get());
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

std::string CoordinatorClient::worker_id() const {
  absl::MutexLock lock(&mu_);
  return worker_id_;
}

absl::StatusOr<v1::RegisterResponse> CoordinatorClient::Register(const v1::WorkerInfo& info) {
  v1::RegisterRequest req;
  *req.mutable_info() = info;
  req.set_previous_worker_id(worker_id());
  v1::RegisterResponse resp;
  auto ctx = Context(rpc_timeout_);
  grpc::Status s = stub_->Register(ctx.get(), req, &resp);
  if (!s.ok()) return rpc::FromGrpcStatus(s);
  absl::MutexLock lock(&mu_);
  worker_id_ = resp.worker_id();
  return resp;
}

absl::StatusOr<bool> CoordinatorClient::Heartbeat(const std::string& job, int attempt,
                                                  int64_t iteration) {
  v1::HeartbeatRequest req;
  req.set_worker_id(worker_id());
  req.set_job(job);
  req.set_attempt(attempt);
  req.set_iteration(iteration);
  v1::HeartbeatResponse resp;
  auto ctx = Context(rpc_timeout_);
  grpc::Status s = stub_->Heartbeat(ctx.get(), req, &resp);
  if (!s.ok()) return rpc::FromGrpcStatus(s);
  return resp.known();
}

absl::StatusOr<v1::ProgressAck> CoordinatorClient::ReportProgress(v1::ProgressReport report) {
  report.set_worker_id(worker_id());
  v1::ProgressAck ack;
  auto ctx = Context(rpc_timeout_);
  grpc::Status s = stub_->ReportProgress(ctx.get(), report, &ack);
  if (!s.ok()) return rpc::FromGrpcStatus(s);
  return ack;
}

absl::Status CoordinatorClient::ReportFault(v1::FaultReport report) {
  report.set_worker_id(worker_id());
  v1::FaultAck ack;
  auto ctx = Context(rpc_timeout_);
  return rpc::FromGrpcStatus(stub_->ReportFault(ctx.get(), report, &ack));
}

absl::Status CoordinatorClient::Attach(
    const std::function<void()>& on_ready,
    const std::function<void(const v1::WorkerCommand&)>& on_command) {
  grpc::ClientContext ctx;  // no deadline: the stream lives for long
  rpc::AddBearerToken(token_, &ctx);
  {
    absl::MutexLock lock(&mu_);
    attach_ctx_ = &ctx;
  }
  v1::AttachRequest req;
  req.set_worker_id(worker_id());
  std::unique_ptr<grpc::ClientReader<v1::WorkerCommand>> reader = stub_->Attach(&ctx, req);
  reader->WaitForInitialMetadata();
  // A refused stream still "delivers" metadata (with the final status), so
  // readiness is confirmed by the first successful Read or by the stream
  // staying open; we report ready now and let Finish tell the truth.
  bool ready_sent = false;
  v1::WorkerCommand cmd;
  while (true) {
    if (!ready_sent) {
      on_ready();
      ready_sent = true;
    }
    if (!reader->Read(&cmd)) break;
    on_command(cmd);
  }
  grpc::Status s = reader->Finish();
  {
    absl::MutexLock lock(&mu_);
    attach_ctx_ = nullptr;
  }
  if (s.ok()) return absl::UnavailableError("the coordinator ended the stream");
  return rpc::FromGrpcStatus(s);
}

void CoordinatorClient::CancelAttach() {
  absl::MutexLock lock(&mu_);
  if (attach_ctx_ != nullptr) attach_ctx_->TryCancel();
}

}  // namespace chronos::worker
