// The coordinator exports exactly the families docs/metrics.md lists, every
// state present, over HTTP on an ephemeral port.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "tests/coordinator/coordinator_harness.h"

namespace chronos::coordinator::testing {
namespace {

std::vector<std::string> CoordinatorMetricNames() {
  std::ifstream in(std::string(CHRONOS_SOURCE_DIR) + "/tests/deploy/metric_names.txt");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "chronos_coordinator_")) names.push_back(line);
  }
  return names;
}

// GET /metrics with a plain socket: bounded by SO_RCVTIMEO.
std::string Scrape(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) return "";
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (send(fd, req.data(), req.size(), 0) < 0) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, n);
  close(fd);
  return out;
}

TEST(MetricsTest, ExportsEveryDocumentedFamilyWithEveryState) {
  Harness::Config config;
  config.serve_metrics = true;
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  ASSERT_TRUE(h.Submit(TinySpec("m")).ok());  // one RPC, one pending job
  const std::vector<std::string> names = CoordinatorMetricNames();
  ASSERT_EQ(names.size(), 8u);
  const std::string text = Scrape(h.coordinator()->metrics_address());
  ASSERT_TRUE(absl::StartsWith(text, "HTTP/1.1 200") ||
              absl::StartsWith(text, "HTTP/1.0 200"))
      << text.substr(0, 200);
  for (const std::string& name : names) {
    EXPECT_NE(text.find("# TYPE " + name + " "), std::string::npos) << name;
  }
  for (const char* state :
       {"pending", "running", "recovering", "succeeded", "failed", "cancelled"}) {
    EXPECT_NE(text.find(absl::StrCat("chronos_coordinator_jobs{state=\"", state, "\"}")),
              std::string::npos)
        << state;
  }
  for (const char* state : {"idle", "busy", "dead"}) {
    EXPECT_NE(text.find(absl::StrCat("chronos_coordinator_workers{state=\"", state, "\"} 0")),
              std::string::npos)
        << state;
  }
  EXPECT_NE(text.find("chronos_coordinator_jobs{state=\"pending\"} 1"), std::string::npos);
  EXPECT_NE(text.find("chronos_coordinator_job_transitions_total{to=\"pending\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("chronos_coordinator_rpc_requests_total{code=\"OK\",method=\"SubmitJob\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("chronos_coordinator_rpc_duration_seconds_count{method=\"SubmitJob\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("chronos_coordinator_info{version="), std::string::npos);
  // No other coordinator family sneaks in undocumented.
  size_t pos = 0;
  while ((pos = text.find("# TYPE chronos_", pos)) != std::string::npos) {
    pos += 7;
    const std::string name = text.substr(pos, text.find(' ', pos) - pos);
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

}  // namespace
}  // namespace chronos::coordinator::testing
