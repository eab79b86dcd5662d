#include "tests/e2e/prometheus_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_cluster.h"

namespace chronos::e2e {
namespace {

// A free loopback port (bound and released: Prometheus has no port 0).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  close(fd);
  return port;
}

std::string Targets(const std::vector<std::string>& addresses) {
  std::vector<std::string> quoted;
  for (const std::string& a : addresses) quoted.push_back(absl::StrCat("\"", a, "\""));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

}  // namespace

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

absl::StatusOr<std::string> PrometheusServer::Binary() {
  CommandResult which = RunCommand("/bin/sh", {"-c", "command -v prometheus"}, absl::Seconds(10));
  if (which.exit_code != 0 || which.out.empty()) {
    return absl::NotFoundError("no prometheus on PATH (Debian: apt-get install prometheus)");
  }
  return std::string(which.out.substr(0, which.out.find('\n')));
}

absl::StatusOr<std::unique_ptr<PrometheusServer>> PrometheusServer::Start(const Options& o) {
  absl::StatusOr<std::string> binary = Binary();
  if (!binary.ok()) return binary.status();
  std::ostringstream config;
  config << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
         << "rule_files:\n";
  for (const std::string& f : o.rule_files) config << "  - " << f << "\n";
  config << "scrape_configs:\n"
         << "  - job_name: chronos-coordinator\n    static_configs:\n      - targets: "
         << Targets({o.coordinator}) << "\n"
         << "  - job_name: chronos-worker\n    static_configs:\n      - targets: "
         << Targets(o.workers) << "\n";
  const std::string config_path = o.dir + "/prometheus.yml";
  std::ofstream(config_path) << config.str();

  std::unique_ptr<PrometheusServer> p(new PrometheusServer());
  p->address_ = absl::StrCat("127.0.0.1:", FreePort());
  p->log_path_ = o.dir + "/prometheus.log";
  absl::StatusOr<std::unique_ptr<client::ChildProcess>> child = client::ChildProcess::Start(
      "prometheus", *binary,
      {"--config.file=" + config_path, "--storage.tsdb.path=" + o.dir + "/prometheus-data",
       "--web.listen-address=" + p->address_, "--log.level=warn"},
      p->log_path_);
  if (!child.ok()) return child.status();
  p->process_ = std::move(*child);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!HttpGet(p->address_, "/-/ready").ok()) {
    if (p->process_->Exited() || absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat("prometheus did not become ready (",
                                                 p->process_->ExitDescription(), "): ", p->Log()));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return p;
}

absl::StatusOr<nlohmann::json> PrometheusServer::Api(const std::string& path_and_query) {
  absl::StatusOr<std::string> body = HttpGet(address_, path_and_query);
  if (!body.ok()) return body.status();
  nlohmann::json j = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || j.value("status", "") != "success") {
    return absl::UnavailableError(absl::StrCat(path_and_query, ": ", body->substr(0, 500)));
  }
  return j["data"];
}

absl::StatusOr<nlohmann::json> PrometheusServer::Query(const std::string& promql) {
  absl::StatusOr<nlohmann::json> data = Api("/api/v1/query?query=" + UrlEncode(promql));
  if (!data.ok()) return data.status();
  return (*data)["result"];
}

absl::StatusOr<nlohmann::json> PrometheusServer::Rules() {
  absl::StatusOr<nlohmann::json> data = Api("/api/v1/rules");
  if (!data.ok()) return data.status();
  return (*data)["groups"];
}

std::string PrometheusServer::Log() const {
  std::ifstream in(log_path_);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace chronos::e2e
