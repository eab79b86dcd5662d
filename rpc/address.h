// Checks of the network addresses given on command lines, before gRPC or
// a socket sees them: gRPC takes "host" with no port as port 443 and a
// port over 65535 as some other port, and says nothing.
#ifndef CHRONOS_CORE_RPC_ADDRESS_H_
#define CHRONOS_CORE_RPC_ADDRESS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace chronos::rpc {

// kInvalidArgument unless `target` is HOST:PORT (port 1-65535; an IPv6
// host in brackets) or a gRPC target URI with a scheme (dns:///h:p,
// unix:/path, ipv4:a:p, ...).
absl::Status CheckTarget(absl::string_view target);

// kInvalidArgument unless `address` is an address to bind: HOST:PORT with
// port 0-65535 (0: any free port), HOST a name, an IPv4 address, an IPv6
// address in brackets, or empty (every interface); for gRPC servers
// (`grpc_server`) also unix:/path. `flag` starts the message.
absl::Status CheckListenAddress(absl::string_view flag, absl::string_view address,
                                bool grpc_server = false);

}  // namespace chronos::rpc

#endif  // CHRONOS_CORE_RPC_ADDRESS_H_
