// A real Prometheus (Debian's `prometheus` binary) on loopback for the
// end-to-end tests: it scrapes the test cluster's daemons every second,
// loads the alert rules of deploy/, and answers PromQL over its HTTP API.
// Not thread-safe (one test thread).
#ifndef CHRONOS_TESTS_E2E_PROMETHEUS_SERVER_H_
#define CHRONOS_TESTS_E2E_PROMETHEUS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/local_cluster.h"
#include "nlohmann/json.hpp"

namespace chronos::e2e {

class PrometheusServer {
 public:
  struct Options {
    std::string dir;                      // config, data and log go here
    std::string coordinator;              // HOST:PORT of its /metrics
    std::vector<std::string> workers;     // HOST:PORT of theirs
    std::vector<std::string> rule_files;  // absolute paths
  };
  // The `prometheus` binary on PATH, or kNotFound.
  static absl::StatusOr<std::string> Binary();
  // Starts it and waits until /-/ready answers.
  static absl::StatusOr<std::unique_ptr<PrometheusServer>> Start(const Options& options);

  // An instant query: the `data.result` array (kUnavailable on an HTTP or
  // API error, with Prometheus' message).
  absl::StatusOr<nlohmann::json> Query(const std::string& promql);
  // GET /api/v1/rules: `data.groups`.
  absl::StatusOr<nlohmann::json> Rules();
  std::string Log() const;

 private:
  PrometheusServer() = default;
  absl::StatusOr<nlohmann::json> Api(const std::string& path_and_query);

  std::unique_ptr<client::ChildProcess> process_;
  std::string address_;
  std::string log_path_;
};

// Percent-encoding of `text` for a URL query value.
std::string UrlEncode(const std::string& text);

}  // namespace chronos::e2e

#endif  // CHRONOS_TESTS_E2E_PROMETHEUS_SERVER_H_
