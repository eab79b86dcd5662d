#include "rpc/address.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chronos::rpc {
namespace {

// HOST and PORT of "HOST:PORT", where HOST may be "[v6]"; false when there
// is no colon, the port is not a number in [min_port, 65535], or HOST is a
// bare IPv6 address (its last colon would be taken for the port's).
bool SplitHostPort(absl::string_view address, int min_port, absl::string_view* host) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return false;
  *host = address.substr(0, colon);
  int port = -1;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < min_port || port > 65535) {
    return false;
  }
  const bool bracketed = host->size() >= 2 && host->front() == '[' && host->back() == ']';
  return bracketed || !absl::StrContains(*host, ':');
}

}  // namespace

absl::Status CheckTarget(absl::string_view target) {
  if (target.empty()) return absl::InvalidArgumentError("server address is empty");
  // A URI (dns:///h:p, unix:/path, ipv4:a:p, ...) is gRPC's to check.
  static const char* const kSchemes[] = {
      "dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:"};
  if (absl::StrContains(target, "://")) return absl::OkStatus();
  for (const char* scheme : kSchemes) {
    if (absl::StartsWith(target, scheme)) return absl::OkStatus();
  }
  absl::string_view host;
  if (!SplitHostPort(target, 1, &host) || host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", target,
        "' is not HOST:PORT (port 1-65535) or a gRPC target such as dns:///HOST:PORT"));
  }
  return absl::OkStatus();
}

absl::Status CheckListenAddress(absl::string_view flag, absl::string_view address,
                                bool grpc_server) {
  if (grpc_server && absl::StartsWith(address, "unix:")) return absl::OkStatus();
  absl::string_view host;
  if (!SplitHostPort(address, 0, &host)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", address, "' is not HOST:PORT (port 0-65535, 0 = any free port; ",
                     "an IPv6 host in brackets, as in [::]:9464)"));
  }
  return absl::OkStatus();
}

}  // namespace chronos::rpc
