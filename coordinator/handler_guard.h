// What every coordinator RPC handler does around its body: refuse calls the
// auth interceptor rejected, and turn an escaping exception (bad_alloc, a
// bug in a library) into INTERNAL instead of letting it reach gRPC.
// Header-only; used by control_service.cc and worker_service.cc.
#ifndef CHRONOS_COORDINATOR_HANDLER_GUARD_H_
#define CHRONOS_COORDINATOR_HANDLER_GUARD_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rpc/auth.h"
#include "rpc/status_convert.h"

namespace chronos::coordinator {

template <typename Body>
grpc::Status Guarded(const grpc::ServerContextBase& ctx, Body&& body) {
  if (rpc::CallRejected(ctx)) return rpc::UnauthenticatedStatus();
  try {
    return rpc::ToGrpcStatus(std::forward<Body>(body)());
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  }
}

// Moves a StatusOr's value into *out.
template <typename T>
absl::Status Into(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return result.status();
  *out = std::move(*result);
  return absl::OkStatus();
}

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_HANDLER_GUARD_H_
