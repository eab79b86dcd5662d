#include "tests/e2e/e2e_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#ifndef CHRONOS_COORDINATOR_PATH
#error "CHRONOS_COORDINATOR_PATH must be defined by the build"
#endif

namespace chronos::e2e {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& text, size_t n) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

CommandResult RunCommand(const std::string& path, const std::vector<std::string>& args,
                         absl::Duration timeout) {
  CommandResult r;
  char out_tmpl[] = "/tmp/chronos-e2e-out-XXXXXX";
  char err_tmpl[] = "/tmp/chronos-e2e-err-XXXXXX";
  const int out_fd = mkstemp(out_tmpl);
  const int err_fd = mkstemp(err_tmpl);
  std::vector<std::string> storage = {path};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  r.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  close(out_fd);
  close(err_fd);
  r.out = ReadFile(out_tmpl);
  r.err = ReadFile(err_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return r;
}

absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad address ", address));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", address));
  }
  const std::string req =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", address, "\r\nConnection: close\r\n\r\n");
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[65536];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t body = resp.find("\r\n\r\n");
  if (!absl::StartsWith(resp, "HTTP/1.") || body == std::string::npos) {
    return absl::DataLossError(absl::StrCat("bad HTTP response from ", address));
  }
  const std::string status_line = resp.substr(0, resp.find("\r\n"));
  if (!absl::StrContains(status_line, " 200")) {
    return absl::UnavailableError(absl::StrCat(address, ": ", status_line));
  }
  std::string text = resp.substr(body + 4);
  // prometheus-cpp's Exposer (the coordinator) may answer chunked.
  if (absl::StrContains(absl::AsciiStrToLower(resp.substr(0, body)),
                        "transfer-encoding: chunked")) {
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t eol = text.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t len = std::strtoul(text.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (len == 0) break;
      out += text.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    text = out;
  }
  return text;
}

double Scrape::Sum(const std::string& name, const std::vector<std::string>& label_filters) const {
  double sum = 0;
  bool any = false;
  for (const auto& [key, value] : samples) {
    const size_t brace = key.find('{');
    if (key.substr(0, brace) != name) continue;
    bool match = true;
    for (const std::string& f : label_filters) {
      if (!absl::StrContains(key, f)) match = false;
    }
    if (!match) continue;
    sum += value;
    any = true;
  }
  return any ? sum : -1;
}

bool Scrape::Has(const std::string& name) const {
  for (const char* suffix : {"", "_count", "_sum", "_bucket"}) {
    if (Sum(name + suffix) >= 0) return true;
  }
  return false;
}

Scrape ParseScrape(const std::string& text) {
  Scrape s;
  s.text = text;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty()) continue;
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 2) s.types[parts[0]] = parts[1];
      continue;
    }
    if (line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    double v = 0;
    const std::string value(line.substr(space + 1));
    if (value == "+Inf") {
      v = 1e308;
    } else if (!absl::SimpleAtod(value, &v)) {
      continue;
    }
    s.samples[std::string(line.substr(0, space))] = v;
  }
  return s;
}

absl::Status PromtoolCheck(const std::string& text) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) {
    return absl::UnavailableError("promtool is not installed (Debian package prometheus)");
  }
  char tmpl[] = "/tmp/chronos-e2e-scrape-XXXXXX";
  const int fd = mkstemp(tmpl);
  (void)!write(fd, text.data(), text.size());
  close(fd);
  CommandResult r =
      RunCommand("/bin/sh", {"-c", absl::StrCat(promtool, " check metrics < ", tmpl)});
  unlink(tmpl);
  if (r.exit_code != 0) {
    return absl::InvalidArgumentError(absl::StrCat("promtool check metrics: ", r.out, r.err));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(Options options) {
  auto c = std::unique_ptr<Cluster>(new Cluster());
  c->o_ = options;
  char tmpl[] = "/tmp/chronos-e2e-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  c->dir_ = tmpl;
  mkdir((c->dir_ + "/logs").c_str(), 0755);
  mkdir((c->dir_ + "/store").c_str(), 0755);
  absl::Status s = c->StartCoordinator();
  if (!s.ok()) return s;
  c->workers_.resize(options.workers);
  c->worker_metrics_.resize(options.workers);
  // Start all, then wait for all: their LibTorch start-ups overlap.
  for (int i = 0; i < options.workers; ++i) {
    s = c->StartWorker(i);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(s.message(), "\n", c->Logs()));
  }
  return c;
}

Cluster::~Cluster() { StopAll(); }

std::string Cluster::WorkerName(int i) { return absl::StrCat("e2e-worker-", i); }

namespace {

// The program and arguments that run `path args` on `host`.
std::pair<std::string, std::vector<std::string>> OnHost(const HostPlacement& host,
                                                        const std::string& path,
                                                        std::vector<std::string> args) {
  if (host.netns.empty()) return {path, std::move(args)};
  std::vector<std::string> all = {absl::StrCat("--net=", host.netns), "--", path};
  all.insert(all.end(), args.begin(), args.end());
  return {"/usr/bin/nsenter", std::move(all)};
}

}  // namespace

absl::Status Cluster::StartCoordinator() {
  const std::string& host = o_.coordinator_host.address;
  const std::string listen = grpc_address_.empty() ? absl::StrCat(host, ":0") : grpc_address_;
  const std::string log = absl::StrCat(dir_, "/logs/coordinator-", coordinator_starts_++, ".log");
  coordinator_.reset();
  auto [program, args] =
      OnHost(o_.coordinator_host, CHRONOS_COORDINATOR_PATH,
             {"--listen", listen, "--metrics-listen", absl::StrCat(host, ":0"), "--data-dir",
              dir_ + "/store", "--heartbeat-interval-ms", absl::StrCat(o_.heartbeat_interval_ms),
              "--shutdown-grace-seconds", "2"});
  auto p = client::ChildProcess::Start("coordinator", program, args, log);
  if (!p.ok()) return p.status();
  coordinator_ = std::move(*p);
  absl::StatusOr<std::string> line =
      coordinator_->WaitForLine("chronos-coordinator listening", absl::Seconds(60));
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat("coordinator did not start: ", ReadFile(log)));
  }
  grpc_address_ = client::ListeningAddress(*line, "grpc");
  coordinator_metrics_ = client::ListeningAddress(*line, "metrics");
  return absl::OkStatus();
}

absl::Status Cluster::StartWorker(int i) {
  const std::string log = absl::StrCat(dir_, "/logs/worker-", i, ".log");
  workers_[i].reset();
  const HostPlacement host =
      o_.worker_hosts.empty() ? HostPlacement() : o_.worker_hosts.at(static_cast<size_t>(i));
  std::vector<std::string> flags = {"--coordinator",
                                    grpc_address_,
                                    "--metrics-listen",
                                    absl::StrCat(host.address, ":0"),
                                    "--listen",
                                    absl::StrCat(host.address, ":0"),
                                    "--advertise-host",
                                    host.address,
                                    "--device",
                                    "cpu",
                                    "--name",
                                    WorkerName(i),
                                    "--threads",
                                    absl::StrCat(o_.threads_per_worker),
                                    "--comm-timeout-seconds",
                                    "60",
                                    "--rendezvous-timeout-seconds",
                                    "60"};
  flags.insert(flags.end(), o_.worker_flags.begin(), o_.worker_flags.end());
  auto [program, args] = OnHost(host, CHRONOS_WORKER_PATH, std::move(flags));
  auto p = client::ChildProcess::Start(absl::StrCat("worker-", i), program, args, log);
  if (!p.ok()) return p.status();
  workers_[i] = std::move(*p);
  absl::StatusOr<std::string> line =
      workers_[i]->WaitForLine("chronos-worker listening", absl::Seconds(60));
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat("worker ", i, " did not start: ", ReadFile(log)));
  }
  worker_metrics_[i] = client::ListeningAddress(*line, "metrics");
  if (worker_metrics_[i].empty()) {
    return absl::InternalError(absl::StrCat("worker ", i, " readiness line: ", *line));
  }
  return absl::OkStatus();
}

void Cluster::KillCoordinator() {
  if (coordinator_) {
    coordinator_->Signal(SIGKILL);
    coordinator_->WaitExit(absl::Seconds(30));
  }
}

void Cluster::KillWorker(int i) {
  if (workers_[i] && !workers_[i]->Exited()) {
    workers_[i]->Signal(SIGKILL);
    workers_[i]->WaitExit(absl::Seconds(30));
  }
}

void Cluster::StopAll() {
  for (auto& w : workers_) {
    if (w && !w->Exited()) w->Signal(SIGTERM);
  }
  for (auto& w : workers_) {
    if (w && !w->WaitExit(absl::Seconds(15))) w->Signal(SIGKILL);
  }
  workers_.clear();
  if (coordinator_ && !coordinator_->Exited()) {
    coordinator_->Signal(SIGTERM);
    if (!coordinator_->WaitExit(absl::Seconds(15))) coordinator_->Signal(SIGKILL);
  }
  coordinator_.reset();
}

CommandResult Cluster::Ctl(const std::vector<std::string>& args, absl::Duration timeout) {
  std::vector<std::string> all = {"--server", grpc_address_};
  all.insert(all.end(), args.begin(), args.end());
  return RunCommand(CHRONOSCTL_PATH, all, timeout);
}

absl::StatusOr<nlohmann::json> Cluster::DescribeJson(const std::string& job) {
  CommandResult r = Ctl({"describe", job, "-o", "json"}, absl::Seconds(30));
  if (r.exit_code != 0) {
    return absl::UnavailableError(
        absl::StrCat("chronosctl describe exited ", r.exit_code, ": ", r.err));
  }
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::DataLossError("describe -o json: not JSON: " + r.out);
  return j;
}

absl::StatusOr<nlohmann::json> Cluster::WaitJob(
    const std::string& job, const std::function<bool(const nlohmann::json&)>& done,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::DeadlineExceededError("never described");
  nlohmann::json seen;
  while (absl::Now() < deadline) {
    absl::StatusOr<nlohmann::json> j = DescribeJson(job);
    if (j.ok()) {
      seen = *j;
      if (done(seen)) return seen;
    } else {
      last = j.status();  // e.g. the coordinator is restarting
    }
    absl::SleepFor(absl::Milliseconds(200));  // polling a real process
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "job ", job, " did not reach the expected state in ", absl::FormatDuration(timeout),
      "; last status: ", seen.is_null() ? last.ToString() : seen["status"].dump(), "\n", Logs()));
}

std::string Cluster::WriteFile(const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat(dir_, "/", name);
  std::ofstream(path) << text;
  return path;
}

std::string Cluster::Logs() const {
  std::string all;
  for (int i = 0; i < coordinator_starts_; ++i) {
    const std::string p = absl::StrCat(dir_, "/logs/coordinator-", i, ".log");
    all += absl::StrCat("--- ", p, "\n", Tail(ReadFile(p), 3000), "\n");
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    const std::string p = absl::StrCat(dir_, "/logs/worker-", i, ".log");
    all += absl::StrCat("--- ", p, "\n", Tail(ReadFile(p), 3000), "\n");
  }
  return all;
}

}  // namespace chronos::e2e
