// `local run` and LocalCluster with stand-in daemons: shell scripts that
// print the daemons' readiness lines and then sleep, in front of a fake
// ControlService. Checks the order of events, the summary, and above all
// that no child process outlives the command, on success, failure and
// interrupt.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "client/local_cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/fake_control_service.h"
#include "tests/client/test_util.h"

namespace chronos::client {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
using testing::CliResult;
using testing::FakeServer;
using testing::ReadFileOrEmpty;
using testing::RunCli;
using testing::ScratchDir;
using testing::TinySpecYaml;
using testing::WriteFile;

void WriteScript(const std::string& path, const std::string& body) {
  WriteFile(path, "#!/bin/sh\n" + body);
  chmod(path.c_str(), 0755);
}

// Stand-ins for the daemons. Each records its pid (for the leak checks),
// prints its arguments and readiness line, then sleeps until signalled.
std::string FakeBinDir(const std::string& grpc_address, const std::string& worker_body = "") {
  const std::string dir = ScratchDir("bin");
  WriteScript(dir + "/chronos-coordinator",
              "echo $$ > \"$CHRONOS_TEST_PID_DIR/coordinator.pid\"\n"
              "echo \"args: $*\"\n"
              "echo \"chronos-coordinator listening grpc=" +
                  grpc_address +
                  " metrics=127.0.0.1:9\"\n"
                  "exec sleep 600\n");
  WriteScript(dir + "/chronos-worker",
              worker_body.empty()
                  ? "echo $$ > \"$CHRONOS_TEST_PID_DIR/worker-$$.pid\"\n"
                    "echo \"args: $*\"\n"
                    "echo 'chronos-worker listening metrics=127.0.0.1:9 health=127.0.0.1:8'\n"
                    "exec sleep 600\n"
                  : worker_body);
  return dir;
}

// Dead or a zombie nobody reaped yet (a re-parented orphan).
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  const std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

std::vector<pid_t> RecordedPids(const std::string& dir) {
  std::vector<pid_t> pids;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    int pid = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFileOrEmpty(e.path().string())), &pid)) {
      pids.push_back(pid);
    }
  }
  return pids;
}

v1::ListWorkersResponse AttachedWorkers(int n) {
  v1::ListWorkersResponse resp;
  for (int i = 0; i < n; ++i) {
    v1::WorkerStatus* w = resp.add_workers();
    w->set_worker_id(absl::StrCat("w", i));
    w->set_attached(true);
    w->set_state(v1::WORKER_STATE_IDLE);
  }
  return resp;
}

v1::JobUpdate IterationUpdate(int64_t seq, int i) {
  v1::JobUpdate u;
  u.set_sequence(seq);
  v1::IterationRecord* it = u.mutable_iteration();
  it->set_iteration(i);
  it->set_loss(5.5 - i);
  it->set_tokens_per_second(100.0 * i);
  for (int d = 0; d < 2; ++d) {
    v1::DeviceIteration* dev = it->add_devices();
    dev->set_device(d);
    dev->set_peak_activation_bytes((int64_t{1} << 33) + d);  // > 2^32
    dev->set_peak_offloaded_bytes(1000 * d);
  }
  return u;
}

class LocalRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pid_dir_ = ScratchDir("pids");
    setenv("CHRONOS_TEST_PID_DIR", pid_dir_.c_str(), 1);
    // local run checks data.path on this machine before it starts anything.
    const std::string dir = ScratchDir("spec");
    const std::string corpus = WriteFile(dir + "/input.txt", std::string(4096, 'a'));
    spec_ = WriteFile(dir + "/job.yaml",
                      absl::StrReplaceAll(TinySpecYaml("tiny"), {{"data/input.txt", corpus}}));
    server_.service().SetWorkers(AttachedWorkers(2));
  }
  void TearDown() override {
    for (pid_t pid : RecordedPids(pid_dir_)) {
      EXPECT_TRUE(ProcessGone(pid)) << "daemon " << pid << " outlived chronosctl";
      kill(pid, SIGKILL);  // don't leak it into other tests either way
    }
  }
  // A job that ran 3 iterations to `end`.
  void ScriptJob(v1::JobState end) {
    std::vector<v1::JobUpdate> script;
    v1::Job outcome;
    for (int i = 1; i <= 3; ++i) {
      script.push_back(IterationUpdate(i, i));
      *outcome.add_iterations() = script.back().iteration();
    }
    v1::JobUpdate last;
    last.set_sequence(4);
    last.mutable_job()->mutable_status()->set_state(end);
    script.push_back(last);
    server_.service().SetWatchScript(script);
    outcome.mutable_status()->set_state(end);
    outcome.mutable_status()->set_message(end == v1::JOB_STATE_FAILED ? "stage 1 crashed" : "");
    server_.service().SetSubmitOutcome(outcome);
  }

  FakeServer server_;
  std::string pid_dir_;
  std::string spec_;
};

TEST_F(LocalRunTest, DataPathThatCannotBeReadHereStopsBeforeAnyDaemonStarts) {
  const std::string dir = ScratchDir("baddata");
  const std::string missing = WriteFile(
      dir + "/missing.yaml",
      absl::StrReplaceAll(TinySpecYaml("tiny"), {{"data/input.txt", dir + "/absent.txt"}}));
  const std::string bin = FakeBinDir(server_.address());
  CliResult r = RunCli({"local", "run", "-f", missing, "--workers", "2", "--bin-dir", bin});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("data.path " + dir + "/absent.txt does not exist"));
  const std::string directory =
      WriteFile(dir + "/directory.yaml",
                absl::StrReplaceAll(TinySpecYaml("tiny"), {{"data/input.txt", dir}}));
  r = RunCli({"local", "run", "-f", directory, "--workers", "2", "--bin-dir", bin});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is a directory"));
  EXPECT_TRUE(RecordedPids(pid_dir_).empty());
}

TEST_F(LocalRunTest, RunsJobPrintsJsonSummaryAndStopsEveryDaemon) {
  ScriptJob(v1::JOB_STATE_SUCCEEDED);
  const std::string data = ScratchDir("data");
  const std::string bin = FakeBinDir(server_.address());
  CliResult r = RunCli({"local", "run", "-f", spec_, "--workers", "2", "--bin-dir", bin,
                        "--data-dir", data, "-o", "json", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["job"], "tiny");
  EXPECT_EQ(j["state"], "SUCCEEDED");
  ASSERT_EQ(j["iterations"].size(), 3u);
  const json& first = j["iterations"][0];
  EXPECT_EQ(first["iteration"], 1);
  EXPECT_DOUBLE_EQ(first["loss"].get<double>(), 4.5);
  EXPECT_DOUBLE_EQ(first["tokens_per_second"].get<double>(), 100.0);
  ASSERT_EQ(first["devices"].size(), 2u);
  EXPECT_EQ(first["devices"][1]["device"], 1);
  ASSERT_TRUE(first["devices"][1]["peak_activation_bytes"].is_number_integer());
  EXPECT_EQ(first["devices"][1]["peak_activation_bytes"].get<int64_t>(), (int64_t{1} << 33) + 1);
  EXPECT_EQ(first["devices"][1]["peak_offloaded_bytes"], 1000);

  // One coordinator and two workers were started, with the documented flags.
  EXPECT_EQ(RecordedPids(pid_dir_).size(), 3u);
  const std::string coord_log = ReadFileOrEmpty(data + "/logs/coordinator.log");
  EXPECT_THAT(coord_log, HasSubstr("--listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir"));
  const std::string worker_log = ReadFileOrEmpty(data + "/logs/worker-1.log");
  EXPECT_THAT(worker_log, HasSubstr("--coordinator " + server_.address()));
  EXPECT_THAT(worker_log, HasSubstr("--device cpu"));
  EXPECT_THAT(worker_log, HasSubstr("--threads 1"));
  // The spec went through the same resolution as submit.
  EXPECT_EQ(server_.service().last_submit().spec().data().path()[0], '/');
  // Progress went to stderr, the summary alone to stdout.
  EXPECT_THAT(r.err, HasSubstr("iter 3/3"));
  EXPECT_TRUE(std::filesystem::exists(data));  // a given data dir is never removed
}

TEST_F(LocalRunTest, TableSummaryAndTemporaryDataDirRemoved) {
  ScriptJob(v1::JOB_STATE_SUCCEEDED);
  const std::string bin = FakeBinDir(server_.address());
  CliResult r = RunCli({"local", "run", "-f", spec_, "--workers", "2", "--bin-dir", bin});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("job/tiny SUCCEEDED after 3 iterations, final loss 2.5000"));
  const size_t at = r.err.find("logs in ");
  ASSERT_NE(at, std::string::npos) << r.err;
  const std::string logs = r.err.substr(at + 8, r.err.find('\n', at) - at - 8);
  EXPECT_FALSE(std::filesystem::exists(logs)) << logs;
}

TEST_F(LocalRunTest, FailedJobExitsOneAndKeepsLogs) {
  ScriptJob(v1::JOB_STATE_FAILED);
  const std::string bin = FakeBinDir(server_.address());
  CliResult r = RunCli({"local", "run", "-f", spec_, "--workers", "2", "--bin-dir", bin});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("FAILED"));
  EXPECT_THAT(r.out, HasSubstr("stage 1 crashed"));
  EXPECT_THAT(r.err, HasSubstr("logs kept in"));
}

TEST_F(LocalRunTest, DaemonThatDiesAtStartIsReportedWithItsLog) {
  const std::string bin = FakeBinDir(server_.address(), "echo 'cannot open device' >&2\nexit 3\n");
  CliResult r = RunCli({"local", "run", "-f", spec_, "--workers", "2", "--bin-dir", bin});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr("worker-0 exited before it was ready"));
  EXPECT_THAT(r.err, HasSubstr("worker-0.log"));
}

TEST_F(LocalRunTest, InterruptStopsTheClusterAndExits130) {
  // Two iterations, then the job keeps running until SIGINT arrives.
  server_.service().SetWatchScript({IterationUpdate(1, 1), IterationUpdate(2, 2)});
  server_.service().OnWatchUpdate([](int i) {
    if (i == 1) raise(SIGINT);
  });
  const std::string bin = FakeBinDir(server_.address());
  CliResult r = RunCli({"local", "run", "-f", spec_, "--workers", "2", "--bin-dir", bin});
  EXPECT_EQ(r.code, 130) << r.err;
  EXPECT_THAT(r.err, HasSubstr("interrupted"));
  EXPECT_EQ(RecordedPids(pid_dir_).size(), 3u);
  // The previous SIGINT disposition is back (the test would die otherwise
  // on the next raise; checked here directly).
  struct sigaction now = {};
  sigaction(SIGINT, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST(LocalClusterTest, ShutdownEscalatesToSigkillAfterGrace) {
  const std::string pids = ScratchDir("stubborn");
  setenv("CHRONOS_TEST_PID_DIR", pids.c_str(), 1);
  const std::string bin = ScratchDir("stubborn-bin");
  WriteScript(bin + "/coord",
              "trap '' TERM\n"
              "echo $$ > \"$CHRONOS_TEST_PID_DIR/coordinator.pid\"\n"
              "echo 'chronos-coordinator listening grpc=127.0.0.1:5 metrics=127.0.0.1:6'\n"
              "while true; do sleep 1; done\n");
  WriteScript(bin + "/worker",
              "echo 'chronos-worker listening metrics=x health=y'\nexec sleep 600\n");
  LocalClusterOptions o;
  o.coordinator_path = bin + "/coord";
  o.worker_path = bin + "/worker";
  o.workers = 1;
  o.grace = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<LocalCluster>> c = LocalCluster::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->grpc_address(), "127.0.0.1:5");
  const absl::Time start = absl::Now();
  (*c)->Shutdown();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  for (pid_t pid : RecordedPids(pids)) EXPECT_TRUE(ProcessGone(pid));
  const std::string dir = (*c)->data_dir();
  c->reset();
  std::filesystem::remove_all(dir);
}

TEST(LocalClusterTest, ListeningAddressParsesKeyValues) {
  EXPECT_EQ(ListeningAddress("chronos-coordinator listening grpc=127.0.0.1:41 metrics=127.0.0.1:42",
                             "grpc"),
            "127.0.0.1:41");
  EXPECT_EQ(ListeningAddress("chronos-worker listening metrics=h:1 health=h:2", "health"), "h:2");
  EXPECT_EQ(ListeningAddress("nothing here", "grpc"), "");
}

TEST(LocalClusterTest, FindDaemonPrefersBinDirThenSelfDirThenPath) {
  const std::string a = ScratchDir("find-a");
  const std::string b = ScratchDir("find-b");
  WriteScript(a + "/chronos-worker", "exit 0\n");
  WriteScript(b + "/chronos-worker", "exit 0\n");
  const auto env = testing::LookupIn({{"PATH", "/nonexistent:" + b}});
  EXPECT_EQ(*FindDaemon("chronos-worker", a, "", env), a + "/chronos-worker");
  EXPECT_EQ(*FindDaemon("chronos-worker", "", a + "/chronosctl", env), a + "/chronos-worker");
  EXPECT_EQ(*FindDaemon("chronos-worker", "", "/nonexistent/chronosctl", env),
            b + "/chronos-worker");
  absl::StatusOr<std::string> missing = FindDaemon("chronos-nope", "", "/x/chronosctl", env);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("--bin-dir"));
}

// chronosctl killed outright (no chance to clean up): PR_SET_PDEATHSIG must
// still take its daemons down.
TEST_F(LocalRunTest, DaemonsDieWhenChronosctlIsKilled) {
  server_.service().SetWorkers(v1::ListWorkersResponse());  // never ready: it waits
  const std::string bin = FakeBinDir(server_.address());
  // chronosctl polls ListWorkers only once every daemon printed its
  // readiness line (after writing its pid file): that is our cue.
  absl::Notification polling;
  server_.service().OnListWorkers([&polling] {
    if (!polling.HasBeenNotified()) polling.Notify();
  });
  const std::string chronosctl = CHRONOSCTL_PATH;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl(chronosctl.c_str(), "chronosctl", "local", "run", "-f", spec_.c_str(), "--workers", "2",
          "--bin-dir", bin.c_str(), "--start-timeout", "60s", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(polling.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_EQ(RecordedPids(pid_dir_).size(), 3u);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  // The daemons are not our children: their death can only be observed.
  const absl::Time gone_by = absl::Now() + absl::Seconds(10);
  for (pid_t pid : RecordedPids(pid_dir_)) {
    while (!ProcessGone(pid) && absl::Now() < gone_by) absl::SleepFor(absl::Milliseconds(20));
  }
  // TearDown checks ProcessGone for each.
}

}  // namespace
}  // namespace chronos::client
