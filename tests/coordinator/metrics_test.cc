// The coordinator exports exactly the families docs/metrics.md lists, every
// state present, over HTTP on an ephemeral port.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "tests/coordinator/coordinator_harness.h"
#include "tests/testing/http_get.h"

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

// GET /metrics from the coordinator's metrics address (HOST:PORT).
std::string Scrape(const std::string& address) {
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) return "";
  return ::chronos::testing::HttpRequest(port, "GET /metrics HTTP/1.0");
}

TEST(MetricsTest, ExportsEveryDocumentedFamilyWithEveryState) {
  Harness::Config config;
  config.serve_metrics = true;
  Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  ASSERT_TRUE(h.Submit(TinySpec("m")).ok());  // one RPC, one pending job
  ASSERT_EQ(h.Get("no-such-job").status().code(), absl::StatusCode::kNotFound);
  const std::vector<std::string> names = CoordinatorMetricNames();
  ASSERT_EQ(names.size(), 11u);
  const std::string text = Scrape(h.coordinator()->metrics_address());
  ASSERT_TRUE(absl::StartsWith(text, "HTTP/1.1 200") || absl::StartsWith(text, "HTTP/1.0 200"))
      << text.substr(0, 200);
  for (const std::string& name : names) {
    // One series per finished job, per worker name: none here yet
    // (PerJobAndPerWorkerNameSeriesFollowTheirState covers them).
    if (name == "chronos_coordinator_job_completion_timestamp_seconds" ||
        name == "chronos_coordinator_worker_state") {
      continue;
    }
    EXPECT_NE(text.find("# TYPE " + name + " "), std::string::npos) << name;
  }
  for (const char* state :
       {"planning", "pending", "running", "recovering", "succeeded", "failed", "cancelled"}) {
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
  EXPECT_NE(text.find("chronos_coordinator_job_state{chronos_job=\"m\",state=\"pending\"} 1"),
            std::string::npos);
  // The same calls under the grpc-ecosystem names stock dashboards query.
  const std::string submit =
      "grpc_method=\"SubmitJob\",grpc_service=\"chronos.v1.ControlService\",grpc_type=\"unary\"";
  EXPECT_NE(text.find("grpc_server_started_total{" + submit + "} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("grpc_server_handled_total{grpc_code=\"OK\"," + submit + "} 1"),
            std::string::npos);
  EXPECT_NE(text.find("grpc_server_handling_seconds_count{" + submit + "} 1"), std::string::npos);
  EXPECT_NE(text.find("grpc_server_handled_total{grpc_code=\"NotFound\",grpc_method=\"GetJob\","
                      "grpc_service=\"chronos.v1.ControlService\",grpc_type=\"unary\"} 1"),
            std::string::npos);
  for (const char* name : {"process_cpu_seconds_total", "process_start_time_seconds",
                           "process_resident_memory_bytes", "process_open_fds"}) {
    EXPECT_NE(text.find(absl::StrCat("# TYPE ", name, " ")), std::string::npos) << name;
  }
  // No other coordinator family sneaks in undocumented.
  size_t pos = 0;
  while ((pos = text.find("# TYPE chronos_", pos)) != std::string::npos) {
    pos += 7;
    const std::string name = text.substr(pos, text.find(' ', pos) - pos);
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

// One series per job, for its current state only (a state change replaces
// it), a completion time once finished, and nothing once the job is gone;
// one series per worker name likewise.
TEST(MetricsTest, PerJobAndPerWorkerNameSeriesFollowTheirState) {
  Metrics m("0");
  m.SetJobStates({{"a", v1::JOB_STATE_RUNNING, 0}, {"b", v1::JOB_STATE_PENDING, 0}});
  std::string text = m.Render();
  EXPECT_NE(text.find("chronos_coordinator_job_state{chronos_job=\"a\",state=\"running\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("chronos_coordinator_job_state{chronos_job=\"b\",state=\"pending\"} 1"),
            std::string::npos);
  EXPECT_EQ(text.find("chronos_coordinator_job_completion_timestamp_seconds{"), std::string::npos);

  m.SetJobStates({{"a", v1::JOB_STATE_FAILED, 1700000000.5}});
  text = m.Render();
  EXPECT_NE(text.find("chronos_coordinator_job_state{chronos_job=\"a\",state=\"failed\"} 1"),
            std::string::npos);
  EXPECT_EQ(text.find("state=\"running\"} 1"), std::string::npos);
  EXPECT_EQ(text.find("chronos_job=\"b\""), std::string::npos);
  EXPECT_NE(text.find("chronos_coordinator_job_completion_timestamp_seconds{chronos_job=\"a\"} "
                      "1700000000.5"),
            std::string::npos);

  m.SetJobStates({});
  EXPECT_EQ(m.Render().find("chronos_job="), std::string::npos);

  m.SetWorkerStates({{"pod-0", v1::WORKER_STATE_DEAD}});
  EXPECT_NE(m.Render().find(
                "chronos_coordinator_worker_state{chronos_worker=\"pod-0\",state=\"dead\"} 1"),
            std::string::npos);
  m.SetWorkerStates({{"pod-0", v1::WORKER_STATE_IDLE}});
  text = m.Render();
  EXPECT_NE(
      text.find("chronos_coordinator_worker_state{chronos_worker=\"pod-0\",state=\"idle\"} 1"),
      std::string::npos);
  EXPECT_EQ(text.find("state=\"dead\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace chronos::coordinator::testing
