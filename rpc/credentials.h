// Credentials and channels from files: the server's TLS certificate and key,
// a client's CA bundle, and the bearer token file. Daemons and chronosctl
// build everything they need to talk gRPC from these, so TLS and token
// handling are the same in all three binaries. Thread-safe (no state).
#ifndef CHRONOS_CORE_RPC_CREDENTIALS_H_
#define CHRONOS_CORE_RPC_CREDENTIALS_H_

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "rpc/address.h"

namespace chronos::rpc {

// A token file holds one line; larger files are a mistake (a key, a
// certificate), not a token.
inline constexpr int64_t kMaxTokenFileBytes = 4096;

// Reads a token file: surrounding whitespace (the trailing newline editors
// and `kubectl create secret --from-file` leave) is trimmed. kNotFound for a
// missing file, kInvalidArgument for an empty, oversized or multi-line file
// or one with control characters. Errors name the path, never the content.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// The daemons' and chronosctl's --token-file: reads it into *token, or
// leaves *token alone when `path` is empty. The error names the flag.
absl::Status LoadTokenFileFlag(const std::string& path, std::string* token);

// Reads a whole (PEM) file, at most 1 MiB.
absl::StatusOr<std::string> ReadPemFile(const std::string& path);

// TLS server credentials from PEM files; plaintext when both are "".
// kInvalidArgument when only one of them is given.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& cert_file, const std::string& key_file);

struct ChannelOptions {
  std::string target;                // HOST:PORT, or any gRPC target URI
  bool tls = false;                  // implied by a non-empty ca_file
  std::string ca_file;               // PEM roots; "" with tls = system roots
  std::string server_name_override;  // certificate name check, for tests
  // Pings on idle connections so that a dead peer is noticed in about
  // keepalive_ms + 5 s even while a stream is idle (server side permits it,
  // see ApplyServerLimits). 0 disables.
  int keepalive_ms = 10000;
  int max_receive_message_bytes = 64 << 20;
};

// A channel (not yet connected) with the options above; the target is
// checked first (CheckTarget).
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(const ChannelOptions& options);

}  // namespace chronos::rpc

#endif  // CHRONOS_CORE_RPC_CREDENTIALS_H_
