#include "client/control_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/exit_codes.h"
#include "core/status_macros.h"
#include "rpc/address.h"
#include "rpc/auth.h"
#include "rpc/credentials.h"
#include "rpc/status_convert.h"

namespace chronos::client {

void PrepareContext(const Connection& conn, grpc::ClientContext* ctx, bool with_deadline) {
  rpc::AddBearerToken(conn.token, ctx);
  if (with_deadline && conn.request_timeout > absl::ZeroDuration()) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + conn.request_timeout));
  }
}

absl::Status FromGrpcStatus(const grpc::Status& status, const Connection& conn) {
  absl::Status s = rpc::FromGrpcStatus(status);
  if (s.ok()) return s;
  std::string message(s.message());
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
      message = absl::StrCat("cannot reach the coordinator at ", conn.server, " (from ",
                             conn.server_source, "): ", message);
      break;
    case absl::StatusCode::kDeadlineExceeded:
      message = absl::StrCat("no answer from the coordinator at ", conn.server, " within ",
                             absl::FormatDuration(conn.request_timeout),
                             " (--request-timeout): ", message);
      break;
    case absl::StatusCode::kUnauthenticated:
      if (conn.token.empty()) {
        message = absl::StrCat(message, " (no token given: use --token-file or CHRONOS_TOKEN)");
      }
      break;
    default:
      return s;
  }
  return absl::Status(s.code(), message);
}

absl::StatusOr<std::unique_ptr<ControlClient>> ControlClient::Create(Connection conn) {
  // An address gRPC would take and never connect to (no port) is the
  // user's mistake, named after where it came from.
  if (absl::Status s = rpc::CheckTarget(conn.server); !s.ok()) {
    return UsageError(absl::StrCat(conn.server_source, ": ", s.message()));
  }
  rpc::ChannelOptions options;
  options.target = conn.server;
  options.tls = conn.tls;
  options.ca_file = conn.tls_ca_file;
  CHRONOS_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, rpc::CreateChannel(options));
  return std::unique_ptr<ControlClient>(new ControlClient(std::move(conn), std::move(channel)));
}

ControlClient::ControlClient(Connection conn, std::shared_ptr<grpc::Channel> channel)
    : conn_(std::move(conn)),
      channel_(std::move(channel)),
      stub_(v1::ControlService::NewStub(channel_)) {}

}  // namespace chronos::client
