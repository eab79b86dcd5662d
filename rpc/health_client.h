// A tiny client for grpc.health.v1.Health/Check, for `chronosctl health`,
// the container HEALTHCHECK and tests (Debian packages no grpc_health_probe).
// Thread-safe.
#ifndef CHRONOS_CORE_RPC_HEALTH_CLIENT_H_
#define CHRONOS_CORE_RPC_HEALTH_CLIENT_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.pb.h"

namespace chronos::rpc {

using ServingStatus = ::grpc::health::v1::HealthCheckResponse::ServingStatus;

// The serving status of `service` ("" = the whole server). kUnavailable or
// kDeadlineExceeded when the server cannot be reached within `timeout`,
// kNotFound for a service the server does not know.
absl::StatusOr<ServingStatus> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& service, absl::Duration timeout);

// "SERVING", "NOT_SERVING", ...
std::string ServingStatusName(ServingStatus status);

}  // namespace chronos::rpc

#endif  // CHRONOS_CORE_RPC_HEALTH_CLIENT_H_
