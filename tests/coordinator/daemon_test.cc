// The coordinator as its users meet it: the chronos-coordinator binary
// killed with SIGKILL mid-job and restarted on the same data directory
// (no job record lost, workers re-attach, the job finishes), and TLS with
// certificate files. Fake workers stand in for chronos-worker.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/coordinator/coordinator_harness.h"

namespace chronos::coordinator::testing {
namespace {

std::string FreshDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   absl::StrCat("chronos_daemon_", ::getpid(), "_", name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// chronos-coordinator next to this test's build tree (build/bin).
std::string CoordinatorBinary() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const std::filesystem::path bin =
      self.parent_path().parent_path() / "bin" / "chronos-coordinator";
  return std::filesystem::exists(bin) ? bin.string() : "";
}

// One chronos-coordinator process; SIGKILLed by the destructor if alive.
class Daemon {
 public:
  ~Daemon() { Kill(); }

  // Starts it and waits for its "listening grpc=HOST:PORT" line.
  absl::Status Start(const std::string& binary, const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) return absl::InternalError("pipe");
    pid_ = fork();
    if (pid_ < 0) return absl::InternalError("fork");
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      const int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, STDERR_FILENO);
      close(out[0]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(binary.c_str()));
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string buffer;
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char chunk[256];
      const ssize_t n = read(out[0], chunk, sizeof(chunk));
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      const size_t at = buffer.find("grpc=");
      if (at != std::string::npos) {
        const size_t end = buffer.find_first_of(" \n", at);
        if (end != std::string::npos) {
          address_ = buffer.substr(at + 5, end - at - 5);
          close(out[0]);
          return absl::OkStatus();
        }
      }
    }
    close(out[0]);
    return absl::DeadlineExceededError(
        absl::StrCat("chronos-coordinator did not report its address: ", buffer));
  }

  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  const std::string& address() const { return address_; }

 private:
  pid_t pid_ = -1;
  std::string address_;
};

std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
  rpc::ChannelOptions o;
  o.target = address;
  return *rpc::CreateChannel(o);
}

v1::Assignment NextAssignment(FakeWorker& w) {
  absl::StatusOr<v1::WorkerCommand> cmd = w.Next();
  EXPECT_TRUE(cmd.ok() && cmd->has_assign()) << (cmd.ok() ? cmd->DebugString() : "");
  return cmd.ok() ? cmd->assign() : v1::Assignment();
}

absl::StatusOr<v1::Job> GetJob(const std::shared_ptr<grpc::Channel>& channel,
                               const std::string& token, const std::string& name) {
  auto stub = v1::ControlService::NewStub(channel);
  grpc::ClientContext ctx;
  rpc::AddBearerToken(token, &ctx);
  SetDeadline(&ctx);
  v1::GetJobRequest req;
  req.set_name(name);
  req.set_include_events(true);
  req.set_include_iterations(true);
  v1::Job job;
  grpc::Status s = stub->GetJob(&ctx, req, &job);
  if (!s.ok()) return rpc::FromGrpcStatus(s);
  return job;
}

TEST(CoordinatorDaemonTest, SigkillLosesNoJobAndReattachedWorkersFinishIt) {
  const std::string binary = CoordinatorBinary();
  if (binary.empty()) GTEST_SKIP() << "chronos-coordinator is not built next to this test";
  const std::string dir = FreshDir("sigkill");
  const std::string token = "daemon-test-token";
  const std::string token_file = dir + "/token";
  std::ofstream(token_file) << token << "\n";
  // Long heartbeats: the fake workers do not beat, and the test must not
  // depend on timing.
  const std::vector<std::string> args = {"--listen",
                                         "127.0.0.1:0",
                                         "--metrics-listen",
                                         "",
                                         "--data-dir",
                                         dir + "/store",
                                         "--token-file",
                                         token_file,
                                         "--heartbeat-interval-ms",
                                         "600000"};

  std::string id0, id1;
  {
    Daemon d;
    ASSERT_TRUE(d.Start(binary, args).ok());
    auto channel = Channel(d.address());
    FakeWorker w0(channel, "pod-0", token);
    FakeWorker w1(channel, "pod-1", token);
    ASSERT_TRUE(w0.Register().ok() && w1.Register().ok());
    ASSERT_TRUE(w0.Attach().ok() && w1.Attach().ok());
    id0 = w0.id();
    id1 = w1.id();
    {
      auto stub = v1::ControlService::NewStub(channel);
      grpc::ClientContext ctx;
      rpc::AddBearerToken(token, &ctx);
      SetDeadline(&ctx);
      v1::SubmitJobRequest req;
      *req.mutable_spec() = TinySpec("durable");
      v1::Job job;
      grpc::Status s = stub->SubmitJob(&ctx, req, &job);
      ASSERT_TRUE(s.ok()) << s.error_message();
      // The daemon plans in the background: the answer may come before
      // or after the plan landed and the idle workers took the job.
      EXPECT_TRUE(job.status().state() == v1::JOB_STATE_PLANNING ||
                  job.status().state() == v1::JOB_STATE_RUNNING)
          << job.status().state();
    }
    const v1::Assignment a0 = NextAssignment(w0);
    const v1::Assignment a1 = NextAssignment(w1);
    ASSERT_TRUE(w0.Progress(a0, 1, false, 0, /*checkpoint=*/1).ok());
    ASSERT_TRUE(w1.Progress(a1, 1, false, 0, /*checkpoint=*/1).ok());
    // Acknowledged means durable: kill without any chance to flush.
    d.Kill();
    w0.Detach();
    w1.Detach();
  }

  Daemon d;
  ASSERT_TRUE(d.Start(binary, args).ok());
  auto channel = Channel(d.address());
  absl::StatusOr<v1::Job> job = GetJob(channel, token, "durable");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->status().iteration(), 1);
  EXPECT_EQ(job->status().checkpoint_iteration(), 1);
  EXPECT_EQ(job->iterations_size(), 1);

  FakeWorker w0(channel, "pod-0", token);
  FakeWorker w1(channel, "pod-1", token);
  ASSERT_TRUE(w0.Register(id0).ok() && w1.Register(id1).ok());
  ASSERT_TRUE(w0.Attach().ok() && w1.Attach().ok());
  const v1::Assignment a0 = NextAssignment(w0);
  const v1::Assignment a1 = NextAssignment(w1);
  EXPECT_EQ(a0.attempt(), 1);
  EXPECT_EQ(a0.resume_iteration(), 1);
  for (int it = 2; it <= 3; ++it) {
    ASSERT_TRUE(w0.Progress(a0, it, it == 3).ok());
    ASSERT_TRUE(w1.Progress(a1, it, it == 3).ok());
  }
  job = GetJob(channel, token, "durable");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job->iterations_size(), 3);
  bool restarted = false;
  for (const v1::JobEvent& e : job->events()) {
    restarted |= e.type() == "CoordinatorRestarted";
    EXPECT_FALSE(absl::StrContains(e.message(), token)) << e.message();
  }
  EXPECT_TRUE(restarted);
  EXPECT_FALSE(absl::StrContains(job->DebugString(), token));
  d.Kill();
  std::filesystem::remove_all(dir);
}

TEST(CoordinatorTlsTest, ServesTlsWhenCertificateFilesAreGiven) {
  const std::string dir = FreshDir("tls");
  const std::string cert = dir + "/tls.crt";
  const std::string key = dir + "/tls.key";
  const std::string cmd = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ",
      key, " -out ", cert, " >/dev/null 2>&1");
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl cannot make a test certificate";

  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "";
  o.token = "tls-token";
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  absl::StatusOr<std::unique_ptr<Coordinator>> c = Coordinator::Create(o);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Start().ok());

  auto list = [&](const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
    auto stub = v1::ControlService::NewStub(channel);
    grpc::ClientContext ctx;
    rpc::AddBearerToken(token, &ctx);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListJobsResponse resp;
    return stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp).error_code();
  };
  rpc::ChannelOptions tls;
  tls.target = (*c)->grpc_address();
  tls.ca_file = cert;
  tls.server_name_override = "localhost";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> secure = rpc::CreateChannel(tls);
  ASSERT_TRUE(secure.ok()) << secure.status();
  EXPECT_EQ(list(*secure, "tls-token"), grpc::StatusCode::OK);
  EXPECT_EQ(list(*secure, "wrong"), grpc::StatusCode::UNAUTHENTICATED);
  // A plaintext client cannot talk to the TLS port at all.
  rpc::ChannelOptions plain;
  plain.target = (*c)->grpc_address();
  EXPECT_EQ(list(*rpc::CreateChannel(plain), "tls-token"), grpc::StatusCode::UNAVAILABLE);
  (*c)->Shutdown(absl::Seconds(1));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chronos::coordinator::testing
