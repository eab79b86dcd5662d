#include "rpc/health_client.h"

#include <grpcpp/client_context.h>

#include <chrono>

#include "grpc/health/v1/health.grpc.pb.h"
#include "rpc/status_convert.h"

namespace chronos::rpc {

absl::StatusOr<ServingStatus> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& service, absl::Duration timeout) {
  auto stub = ::grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  ::grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  ::grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status();
}

std::string ServingStatusName(ServingStatus status) {
  return ::grpc::health::v1::HealthCheckResponse::ServingStatus_Name(status);
}

}  // namespace chronos::rpc
