// End-to-end test support: a Chronos cluster of real processes
// (chronos-coordinator and N chronos-worker, started, killed and restarted
// individually) on localhost, or each on a test host of its own (a network
// namespace with its own address, see tests/e2e/test_hosts.h), chronosctl runs with captured
// output, /metrics scrapes and a parser for the Prometheus text format, and promtool.
//
// Readiness is explicit: every daemon prints a "listening" line, and waits
// poll the coordinator's state through chronosctl; nothing sleeps to wait.
// Not thread-safe (one test thread).
#ifndef CHRONOS_TESTS_E2E_E2E_CLUSTER_H_
#define CHRONOS_TESTS_E2E_E2E_CLUSTER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/local_cluster.h"
#include "nlohmann/json.hpp"

namespace chronos::e2e {

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// Runs `path args...` to completion (at most `timeout`, then SIGKILL).
CommandResult RunCommand(const std::string& path, const std::vector<std::string>& args,
                         absl::Duration timeout = absl::Minutes(2));

// GET http://address/metrics; the body.
absl::StatusOr<std::string> HttpGet(const std::string& address,
                                    const std::string& path = "/metrics");

// One scrape: "name{labels}" (labels as exposed, sorted by the exporter)
// -> value, and the family names seen (from # TYPE lines).
struct Scrape {
  std::string text;
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family -> counter|gauge|...
  // Sum of the samples of `name` whose label text contains every one of
  // `label_filters` (e.g. {"stage=\"0\""}); nullopt-like: -1 when none.
  double Sum(const std::string& name, const std::vector<std::string>& label_filters = {}) const;
  bool Has(const std::string& name) const;  // some sample of that name
};
Scrape ParseScrape(const std::string& text);

// `promtool check metrics` on `text`: OK, or an error with its output.
// kUnavailable when promtool is not installed.
absl::Status PromtoolCheck(const std::string& text);

// Where a daemon runs: a network namespace (a path nsenter --net takes;
// "" = the test's own) and the address it listens on and advertises.
struct HostPlacement {
  std::string netns;
  std::string address = "127.0.0.1";
};

class Cluster {
 public:
  struct Options {
    int workers = 4;
    int threads_per_worker = 1;
    int heartbeat_interval_ms = 1000;
    // Per daemon; default all on 127.0.0.1 in the test's own namespace.
    HostPlacement coordinator_host;
    std::vector<HostPlacement> worker_hosts;  // empty, or one per worker
    // Added to every worker's command line.
    std::vector<std::string> worker_flags;
  };
  // Everything lives under a fresh temporary directory.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(Options options);
  ~Cluster();

  // The worker name StartWorker(i) gives (worker ids start with it and "-").
  static std::string WorkerName(int i);

  // (Re)starts the coordinator on the same gRPC address and data directory.
  absl::Status StartCoordinator();
  absl::Status StartWorker(int i);
  void KillCoordinator();  // SIGKILL, reaped
  void KillWorker(int i);  // SIGKILL, reaped; no-op once it exited
  void StopAll();          // SIGTERM everything, then SIGKILL

  // chronosctl --server <coordinator> args...
  CommandResult Ctl(const std::vector<std::string>& args,
                    absl::Duration timeout = absl::Minutes(2));
  // `chronosctl describe JOB -o json`, parsed.
  absl::StatusOr<nlohmann::json> DescribeJson(const std::string& job);
  // Polls DescribeJson until `done(job)` or `timeout`; the last job seen.
  absl::StatusOr<nlohmann::json> WaitJob(const std::string& job,
                                         const std::function<bool(const nlohmann::json&)>& done,
                                         absl::Duration timeout);

  const std::string& dir() const { return dir_; }
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& coordinator_metrics() const { return coordinator_metrics_; }
  const std::vector<std::string>& worker_metrics() const { return worker_metrics_; }
  // A file under dir() with `text`; its path.
  std::string WriteFile(const std::string& name, const std::string& text);
  // The daemons' logs, for failure messages.
  std::string Logs() const;

 private:
  Cluster() = default;
  Options o_;
  std::string dir_;
  std::string grpc_address_;  // fixed after the first start
  std::string coordinator_metrics_;
  std::unique_ptr<client::ChildProcess> coordinator_;
  std::vector<std::unique_ptr<client::ChildProcess>> workers_;
  std::vector<std::string> worker_metrics_;
  int coordinator_starts_ = 0;
};

}  // namespace chronos::e2e

#endif  // CHRONOS_TESTS_E2E_E2E_CLUSTER_H_
