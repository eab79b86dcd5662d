// A connection to the coordinator's ControlService as chronosctl uses it:
// one channel (core/rpc/credentials.h), the generated stub, and the per-call
// setup every RPC needs (deadline, bearer token via core/rpc/auth.h). One
// ControlClient per command; calls may be made from any thread.
#ifndef CHRONOS_CLIENT_CONTROL_CLIENT_H_
#define CHRONOS_CLIENT_CONTROL_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chronos/v1/control.grpc.pb.h"
#include "client/config.h"
#include "grpcpp/grpcpp.h"

namespace chronos::client {

// The generated stub; its methods name the RPC in ControlClient::Call.
using Stub = v1::ControlService::StubInterface;

// Adds the authorization header (when there is a token) and, when
// `with_deadline`, the request timeout. Streams that last as long as a job
// (WatchJob) pass with_deadline = false.
void PrepareContext(const Connection& conn, grpc::ClientContext* ctx, bool with_deadline = true);

// The gRPC status as an absl::Status with the same code. Messages gain what
// a user needs to act on them: the server address and where it came from
// for UNAVAILABLE and DEADLINE_EXCEEDED, a hint for UNAUTHENTICATED.
absl::Status FromGrpcStatus(const grpc::Status& status, const Connection& conn);

class ControlClient {
 public:
  // Fails only on a bad target or an unreadable CA file; gRPC connects
  // lazily, so an unreachable server shows up on the first call.
  static absl::StatusOr<std::unique_ptr<ControlClient>> Create(Connection conn);

  const Connection& connection() const { return conn_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  Stub& stub() { return *stub_; }

  void Prepare(grpc::ClientContext* ctx, bool with_deadline = true) const {
    PrepareContext(conn_, ctx, with_deadline);
  }
  absl::Status Convert(const grpc::Status& status) const { return FromGrpcStatus(status, conn_); }
  // One unary call with the per-call setup above, its status converted:
  //   client.Call(&Stub::GetJob, req, &job)
  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    const grpc::Status s = (stub_.get()->*method)(&ctx, request, response);
    return s.ok() ? absl::OkStatus() : Convert(s);
  }

 private:
  ControlClient(Connection conn, std::shared_ptr<grpc::Channel> channel);

  Connection conn_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_CONTROL_CLIENT_H_
