// The one place where absl::Status and grpc::Status meet. Modules return
// absl::Status (codes chosen by what the caller should do); the gRPC
// adapters convert at the edge with these two functions and nowhere else.
// Both use the canonical code space, so the mapping is one-to-one; any code
// outside it becomes UNKNOWN. Pure; any thread.
#ifndef CHRONOS_CORE_RPC_STATUS_CONVERT_H_
#define CHRONOS_CORE_RPC_STATUS_CONVERT_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace chronos::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// "OK", "INVALID_ARGUMENT", ...: the names Prometheus labels and logs use.
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace chronos::rpc

#endif  // CHRONOS_CORE_RPC_STATUS_CONVERT_H_
