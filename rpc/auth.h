// Bearer-token authentication for Chronos's gRPC servers and clients.
//
// Server side: a server interceptor (installed with
// ServerBuilder::experimental().SetInterceptorCreators) checks the
// `authorization: Bearer <token>` metadata of every call. We cannot use
// grpc::AuthMetadataProcessor: on a plaintext port (local mode, CI) gRPC
// aborts the process when one is installed, and call credentials are not
// sent without TLS either. The health service and server reflection are
// exempt, because kubelet gRPC probes send no credentials.
//
// A server interceptor in gRPC 1.51 cannot stop a synchronous handler from
// running, so rejection takes two steps: the interceptor cancels the call
// with UNAUTHENTICATED (that is what the client sees) and marks the call;
// every handler begins with `if (CallRejected(ctx)) return ...` so that no
// work is done for a rejected caller. The token itself is removed from the
// metadata handlers see and is never logged.
//
// Thread-safe: the factory may be shared by all server threads.
#ifndef CHRONOS_CORE_RPC_AUTH_H_
#define CHRONOS_CORE_RPC_AUTH_H_

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace chronos::rpc {

inline constexpr char kAuthorizationHeader[] = "authorization";

// Constant-time in the length of `expected`: the time taken does not reveal
// how long a prefix of the secret a guess got right.
bool TokensEqual(absl::string_view presented, absl::string_view expected);

// Whether `method` ("/grpc.health.v1.Health/Check") needs no token.
bool IsAuthExempt(absl::string_view method);

// Interceptor factory requiring `token` (must be non-empty) on every
// non-exempt method.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeTokenAuthInterceptorFactory(std::string token);

// True when the auth interceptor rejected this call; the handler must then
// return UnauthenticatedStatus() at once. Always false without a token.
bool CallRejected(const grpc::ServerContextBase& context);
grpc::Status UnauthenticatedStatus();

// Client side: adds `authorization: Bearer <token>`; no-op for "".
void AddBearerToken(const std::string& token, grpc::ClientContext* context);

}  // namespace chronos::rpc

#endif  // CHRONOS_CORE_RPC_AUTH_H_
