#include "tests/e2e/test_hosts.h"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace chronos::e2e {
namespace {

constexpr char kInsideVar[] = "CHRONOS_E2E_IN_TEST_NAMESPACES";
constexpr char kUnshare[] = "/usr/bin/unshare";
constexpr char kIp[] = "/usr/sbin/ip";
constexpr char kBridge[] = "chronos-br0";

absl::Status Run(const std::string& path, const std::vector<std::string>& args) {
  CommandResult r = RunCommand(path, args, absl::Seconds(30));
  if (r.exit_code == 0) return absl::OkStatus();
  std::string line = path;
  for (const std::string& a : args) absl::StrAppend(&line, " ", a);
  return absl::UnavailableError(
      absl::StrCat(line, " exited ", r.exit_code, ": ", absl::StripAsciiWhitespace(r.err)));
}

absl::Status Ip(const std::vector<std::string>& args) { return Run(kIp, args); }

}  // namespace

bool InsideTestNamespaces() { return std::getenv(kInsideVar) != nullptr; }

absl::StatusOr<CommandResult> RunInsideNamespaces(const std::string& test_filter,
                                                  absl::Duration timeout) {
  for (const char* tool : {kUnshare, kIp, "/usr/bin/nsenter", "/bin/mount"}) {
    if (access(tool, X_OK) != 0) {
      return absl::UnavailableError(absl::StrCat(tool, " is not installed"));
    }
  }
  // Both steps can be refused: user namespaces (a sysctl, a seccomp
  // profile of the container) and veth pairs (a kernel without them).
  if (absl::Status s =
          Run(kUnshare, {"--user", "--map-root-user", "--net", "--mount", "/bin/sh", "-c",
                         "ip link add chronos-p0 type veth peer name chronos-p1"});
      !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot make a network namespace with a veth pair here: ", s.message()));
  }
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return absl::InternalError("cannot read /proc/self/exe");
  self[n] = '\0';
  // The re-run inherits the environment; only it sees the marker.
  setenv(kInsideVar, "1", 1);
  CommandResult r = RunCommand(kUnshare,
                               {"--user", "--map-root-user", "--net", "--mount", self,
                                absl::StrCat("--gtest_filter=", test_filter)},
                               timeout);
  unsetenv(kInsideVar);
  return r;
}

absl::StatusOr<std::vector<TestHost>> MakeHosts(const std::vector<std::string>& names) {
  if (!InsideTestNamespaces()) {
    return absl::FailedPreconditionError("MakeHosts runs inside RunInsideNamespaces only");
  }
  // `ip netns` keeps its namespaces under /run/netns: a private /run (this
  // mount namespace's own) holds them without touching the machine's.
  if (absl::Status s = Run("/bin/mount", {"-t", "tmpfs", "tmpfs", "/run"}); !s.ok()) return s;
  if (absl::Status s = Run("/bin/mkdir", {"-p", "/run/netns"}); !s.ok()) return s;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"link", "set", "lo", "up"},
        std::vector<std::string>{"link", "add", kBridge, "type", "bridge"},
        std::vector<std::string>{"addr", "add", "10.99.0.254/24", "dev", kBridge},
        std::vector<std::string>{"link", "set", kBridge, "up"}}) {
    if (absl::Status s = Ip(args); !s.ok()) return s;
  }
  std::vector<TestHost> hosts;
  for (size_t i = 0; i < names.size(); ++i) {
    TestHost h;
    h.name = names[i];
    h.netns = absl::StrCat("/run/netns/", h.name);
    h.address = absl::StrCat("10.99.0.", i + 1);
    h.link = absl::StrCat("veth-", h.name).substr(0, 15);  // IFNAMSIZ
    for (const std::vector<std::string>& args : {
             std::vector<std::string>{"netns", "add", h.name},
             std::vector<std::string>{"link", "add", h.link, "type", "veth", "peer", "name", "eth0",
                                      "netns", h.name},
             std::vector<std::string>{"link", "set", h.link, "master", kBridge},
             std::vector<std::string>{"link", "set", h.link, "up"},
             std::vector<std::string>{"-n", h.name, "addr", "add", h.address + "/24", "dev",
                                      "eth0"},
             std::vector<std::string>{"-n", h.name, "link", "set", "eth0", "up"},
             std::vector<std::string>{"-n", h.name, "link", "set", "lo", "up"},
         }) {
      if (absl::Status s = Ip(args); !s.ok()) return s;
    }
    hosts.push_back(h);
  }
  return hosts;
}

absl::Status SetLink(const TestHost& host, bool up) {
  return Ip({"link", "set", host.link, up ? "up" : "down"});
}

absl::StatusOr<int64_t> LinkBytes(const TestHost& host) {
  // /proc/net is this process's network namespace (the bridge's); /sys
  // would show the machine's, which mounted it.
  std::ifstream in("/proc/net/dev");
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&rest, host.link + ":")) continue;
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ...
    std::vector<absl::string_view> fields = absl::StrSplit(rest, ' ', absl::SkipEmpty());
    int64_t rx = 0, tx = 0;
    if (fields.size() < 9 || !absl::SimpleAtoi(fields[0], &rx) ||
        !absl::SimpleAtoi(fields[8], &tx)) {
      return absl::DataLossError(absl::StrCat("/proc/net/dev: cannot parse '", line, "'"));
    }
    return rx + tx;
  }
  return absl::NotFoundError(absl::StrCat(host.link, " is not in /proc/net/dev"));
}

}  // namespace chronos::e2e
