// Test hosts for end-to-end tests: network namespaces with an address each,
// joined by veth pairs to a bridge in the test's own network namespace,
// made with iproute2 inside an unprivileged user namespace.
//
// An unprivileged process cannot make network namespaces in its own user
// namespace, so a test that wants hosts runs itself again inside new user,
// network and mount namespaces (RunInsideNamespaces; `unshare -rnm`), and
// there makes them (MakeHosts). Everything lives in those namespaces: the
// netns mounts under a private /run, the bridge and the links. When the
// re-run and its daemons (which die with it) exit, they are gone; nothing
// on the machine changes.
#ifndef CHRONOS_TESTS_E2E_TEST_HOSTS_H_
#define CHRONOS_TESTS_E2E_TEST_HOSTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/e2e/e2e_cluster.h"

namespace chronos::e2e {

// Whether this process is a re-run made by RunInsideNamespaces.
bool InsideTestNamespaces();

// Runs this test binary again, only `test_filter`, inside new user, network
// and mount namespaces, for at most `timeout`; its exit code and output.
// kUnavailable, saying why, where namespaces or veth pairs cannot be made.
absl::StatusOr<CommandResult> RunInsideNamespaces(const std::string& test_filter,
                                                  absl::Duration timeout);

struct TestHost {
  std::string name;
  std::string netns;    // for nsenter --net=
  std::string address;  // its own IPv4 address
  std::string link;     // the bridge side of its veth pair
};

// Inside the namespaces only: one host per name, 10.99.0.1, .2, ... /24 on
// a bridge that holds 10.99.0.254 for the test itself.
absl::StatusOr<std::vector<TestHost>> MakeHosts(const std::vector<std::string>& names);

// Cuts (up = false) or restores the host's link to the bridge.
absl::Status SetLink(const TestHost& host, bool up);

// Bytes the host sent and received through its link so far.
absl::StatusOr<int64_t> LinkBytes(const TestHost& host);

}  // namespace chronos::e2e

#endif  // CHRONOS_TESTS_E2E_TEST_HOSTS_H_
