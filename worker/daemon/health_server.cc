#include "worker/daemon/health_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "rpc/limits.h"

namespace chronos::worker {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

class HealthServer::Service final : public ::grpc::health::v1::Health::Service {
 public:
  Service() {
    status_[""] = HealthCheckResponse::SERVING;
    status_[kWorkerHealthService] = HealthCheckResponse::NOT_SERVING;
  }

  void Set(const std::string& service, HealthCheckResponse::ServingStatus s) {
    absl::MutexLock lock(&mu_);
    status_[service] = s;
  }
  void ShutdownAll() {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    for (auto& [name, s] : status_) s = HealthCheckResponse::NOT_SERVING;
  }

  grpc::Status Check(grpc::ServerContext* ctx, const HealthCheckRequest* req,
                     HealthCheckResponse* resp) override {
    absl::MutexLock lock(&mu_);
    auto it = status_.find(req->service());
    if (it == status_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
    }
    resp->set_status(it->second);
    return grpc::Status::OK;
  }

  // Sends the status at once and on every change, until the client leaves
  // or the server shuts down (polled: probes are rare and cheap).
  grpc::Status Watch(grpc::ServerContext* ctx, const HealthCheckRequest* req,
                     grpc::ServerWriter<HealthCheckResponse>* writer) override {
    int last = -1;
    while (!ctx->IsCancelled()) {
      HealthCheckResponse resp;
      bool done;
      {
        absl::MutexLock lock(&mu_);
        auto it = status_.find(req->service());
        resp.set_status(it == status_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second);
        done = shutdown_;
      }
      if (resp.status() != last) {
        if (!writer->Write(resp)) break;
        last = resp.status();
      }
      if (done) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return grpc::Status::OK;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, HealthCheckResponse::ServingStatus> status_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

HealthServer::HealthServer() : service_(std::make_unique<Service>()) {}

HealthServer::~HealthServer() { Shutdown(); }

absl::Status HealthServer::Start(const std::string& listen) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  rpc::ApplyServerLimits(&builder);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("--listen: cannot serve the health service on ",
                                               listen, " (address in use or not local?)"));
  }
  const size_t colon = listen.rfind(':');
  address_ = absl::StrCat(colon == std::string::npos ? listen : listen.substr(0, colon), ":", port);
  return absl::OkStatus();
}

void HealthServer::SetConnected(bool connected) {
  service_->Set(kWorkerHealthService,
                connected ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
}

void HealthServer::Shutdown() {
  service_->ShutdownAll();
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_.reset();
}

}  // namespace chronos::worker
