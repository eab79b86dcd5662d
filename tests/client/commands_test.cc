// Commands against a fake ControlService served in-process: what each sends
// and what it prints, and how server errors become exit codes.
#include <filesystem>

#include "client/job_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/fake_control_service.h"
#include "tests/client/test_util.h"

namespace chronos::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using json = nlohmann::json;
using testing::CliResult;
using testing::Env;
using testing::FakeServer;
using testing::RunCli;
using testing::ScratchDir;
using testing::TinySpecYaml;
using testing::WriteFile;

v1::Job RunningJob(const std::string& name) {
  v1::Job job;
  job.mutable_metadata()->set_name(name);
  job.mutable_metadata()->set_generation(2);
  job.mutable_spec()->set_name(name);
  job.mutable_spec()->mutable_training()->set_iterations(3);
  job.mutable_status()->set_state(v1::JOB_STATE_RUNNING);
  job.mutable_status()->set_iteration(1);
  job.mutable_status()->set_loss(5.25);
  v1::IterationRecord* it = job.add_iterations();
  it->set_iteration(1);
  it->set_loss(5.25);
  v1::JobEvent* e = job.add_events();
  e->set_sequence(1);
  e->set_type("Started");
  e->set_state(v1::JOB_STATE_RUNNING);
  return job;
}

// Iterations 1..3 then the terminal state `end`.
std::vector<v1::JobUpdate> Script(const std::string& name, v1::JobState end) {
  std::vector<v1::JobUpdate> updates;
  int64_t seq = 0;
  for (int i = 1; i <= 3; ++i) {
    v1::JobUpdate u;
    u.set_sequence(++seq);
    v1::IterationRecord* it = u.mutable_iteration();
    it->set_iteration(i);
    it->set_loss(6.0 - i);
    it->set_tokens_per_second(1000 * i);
    v1::DeviceIteration* d = it->add_devices();
    d->set_device(0);
    d->set_peak_activation_bytes(int64_t{3} << 20);
    d->set_hbm_peak_bytes(int64_t{1} << 30);
    updates.push_back(u);
  }
  v1::JobUpdate last;
  last.set_sequence(++seq);
  last.mutable_event()->set_type(end == v1::JOB_STATE_SUCCEEDED ? "Succeeded" : "Failed");
  last.mutable_event()->set_state(end);
  last.mutable_event()->set_message(end == v1::JOB_STATE_SUCCEEDED ? "" : "worker 1 died");
  last.mutable_job()->mutable_metadata()->set_name(name);
  last.mutable_job()->mutable_status()->set_state(end);
  updates.push_back(last);
  return updates;
}

class CommandsTest : public ::testing::Test {
 protected:
  CliResult Run(std::vector<std::string> args, Env env = {}) {
    args.push_back("--server");
    args.push_back(server_.address());
    return RunCli(std::move(args), std::move(env));
  }
  FakeServer server_;
};

TEST_F(CommandsTest, SubmitSendsResolvedSpecWithRequestId) {
  const std::string dir = ScratchDir("submit");
  const std::string profile = WriteFile(
      dir + "/a100.yaml", "base: h100\nname: a100-40gb\nhbm_bytes: 40GiB\npeak_flops: 312e12\n");
  std::string yaml = TinySpecYaml("sub");
  yaml.replace(yaml.find("profile: cpu"), 12, "profile: " + profile);
  yaml.replace(yaml.find("precision: fp32"), 15,
               "precision: fp32, checkpoint_every: 1, checkpoint_dir: ckpt");
  const std::string spec = WriteFile(dir + "/job.yaml", yaml);

  CliResult r = Run({"submit", "-f", spec, "--request-id", "req-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  // The coordinator answers before the plan is made; the line says so.
  EXPECT_EQ(r.out,
            "job/sub submitted; the coordinator is planning it (`chronosctl watch sub` follows "
            "it)\n");
  const v1::SubmitJobRequest req = server_.service().last_submit();
  EXPECT_EQ(req.request_id(), "req-1");
  EXPECT_EQ(req.spec().name(), "sub");
  EXPECT_EQ(req.spec().model().layers(), 4);
  // Relative data paths become absolute against the current directory.
  EXPECT_EQ(req.spec().data().path(), AbsolutePath("data/input.txt", CurrentDirectory()));
  EXPECT_EQ(req.spec().data().path()[0], '/');
  // So do checkpoint folders: every stage of every attempt must find them.
  EXPECT_EQ(req.spec().training().checkpoint_dir(), AbsolutePath("ckpt", CurrentDirectory()));
  // A profile file is inlined so the coordinator need not read our disk.
  EXPECT_EQ(req.spec().device().custom().hbm_bytes(), int64_t{40} << 30);
  EXPECT_EQ(req.spec().device().custom().name(), "a100-40gb");
  EXPECT_GT(req.spec().device().custom().p2p_bandwidth(), 0);  // from base: h100
}

TEST_F(CommandsTest, SubmitGeneratesARequestIdAndPrintsJsonObject) {
  const std::string dir = ScratchDir("submitjson");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml("js"));
  CliResult r = Run({"submit", "-f", spec, "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(server_.service().last_submit().request_id(), StartsWith("chronosctl-"));
  const json j = json::parse(r.out);
  EXPECT_EQ(j["metadata"]["name"], "js");
  EXPECT_EQ(j["spec"]["model"]["layers"], 4);
}

TEST_F(CommandsTest, SubmitWaitExitsWithTheJobsOutcome) {
  const std::string dir = ScratchDir("wait");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml("w"));
  server_.service().SetWatchScript(Script("w", v1::JOB_STATE_SUCCEEDED));
  CliResult ok = Run({"submit", "-f", spec, "--wait"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("iter 3/3"));
  EXPECT_THAT(ok.out, HasSubstr("job/w SUCCEEDED"));

  server_.service().SetWatchScript(Script("w", v1::JOB_STATE_FAILED));
  CliResult failed = Run({"submit", "-f", spec, "--wait"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_THAT(failed.err, HasSubstr("job/w FAILED"));
}

TEST_F(CommandsTest, GetPrintsTableJsonAndYaml) {
  server_.service().AddJob(RunningJob("a"));
  CliResult table = Run({"get", "a"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("RUNNING"));
  EXPECT_THAT(table.out, HasSubstr("1/3"));
  EXPECT_EQ(server_.service().last_get().name(), "a");

  CliResult js = Run({"get", "a", "-o", "json"});
  ASSERT_EQ(js.code, 0) << js.err;
  const json j = json::parse(js.out);
  EXPECT_EQ(j["status"]["state"], "JOB_STATE_RUNNING");
  EXPECT_EQ(j["metadata"]["generation"], 2);
  // JSON/YAML carry the whole object, history included.
  EXPECT_TRUE(server_.service().last_get().include_iterations());

  CliResult yaml = Run({"get", "a", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  EXPECT_THAT(yaml.out, HasSubstr("state: JOB_STATE_RUNNING"));
}

TEST_F(CommandsTest, GetOfMissingJobExitsFour) {
  CliResult r = Run({"get", "nope"});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, StartsWith("error: "));
  EXPECT_THAT(r.err, HasSubstr("nope"));
}

TEST_F(CommandsTest, ListFiltersByStateAndPrintsEveryJob) {
  server_.service().AddJob(RunningJob("a"));
  server_.service().AddJob(RunningJob("b"));
  CliResult r = Run({"list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("a "));
  EXPECT_THAT(r.out, HasSubstr("b "));
  EXPECT_EQ(server_.service().last_list().state(), v1::JOB_STATE_UNSPECIFIED);

  CliResult filtered = Run({"list", "--state", "succeeded", "-o", "json"});
  ASSERT_EQ(filtered.code, 0) << filtered.err;
  EXPECT_EQ(server_.service().last_list().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(json::parse(filtered.out)["resource_version"], "42");
}

TEST_F(CommandsTest, CancelSendsNameAndReportsState) {
  server_.service().AddJob(RunningJob("c"));
  CliResult r = Run({"cancel", "c"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.service().last_cancel().name(), "c");
  EXPECT_THAT(r.out, HasSubstr("job/c cancelled (state CANCELLED)"));
  EXPECT_EQ(Run({"cancel", "zzz"}).code, 4);
}

TEST_F(CommandsTest, DeleteRemovesTheJob) {
  server_.service().AddJob(RunningJob("d"));
  CliResult r = Run({"delete", "d"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "job/d deleted\n");
  EXPECT_EQ(Run({"get", "d"}).code, 4);
}

TEST_F(CommandsTest, DescribeShowsSectionsFromTheFullJob) {
  v1::Job job = RunningJob("desc");
  v1::StageAssignment* a = job.mutable_status()->add_assignments();
  a->set_worker_id("worker-xyz");
  server_.service().AddJob(job);
  CliResult r = Run({"describe", "desc"}, {{"CHRONOS_TOKEN", "s3cr3t-token"}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(server_.service().last_get().include_events());
  EXPECT_TRUE(server_.service().last_get().include_iterations());
  EXPECT_THAT(r.out, HasSubstr("Name:"));
  EXPECT_THAT(r.out, HasSubstr("worker-xyz"));
  EXPECT_THAT(r.out, HasSubstr("Started"));
  EXPECT_THAT(r.out, HasSubstr("5.2500"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("s3cr3t-token")));
}

TEST_F(CommandsTest, WatchPrintsProgressAndExitsByOutcome) {
  server_.service().AddJob(RunningJob("w"));
  server_.service().SetWatchScript(Script("w", v1::JOB_STATE_SUCCEEDED));
  CliResult ok = Run({"watch", "w"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("iter 1/3  loss 5.0000"));
  EXPECT_THAT(ok.out, HasSubstr("iter 3/3  loss 3.0000"));
  EXPECT_THAT(ok.out, HasSubstr("s0 hbm 1.00 GiB act 3.00 MiB"));
  EXPECT_THAT(ok.out, HasSubstr("job/w SUCCEEDED"));
  EXPECT_EQ(server_.service().last_watch().name(), "w");
  EXPECT_EQ(server_.service().last_watch().since_sequence(), 0);

  server_.service().SetWatchScript(Script("w", v1::JOB_STATE_FAILED));
  CliResult failed = Run({"watch", "w", "--since", "2"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(server_.service().last_watch().since_sequence(), 2);
  EXPECT_THAT(failed.out, Not(HasSubstr("iter 2/3")));
  EXPECT_THAT(failed.out, HasSubstr("iter 3/3"));
  EXPECT_THAT(failed.err, HasSubstr("FAILED"));
}

TEST_F(CommandsTest, WatchJsonPrintsOneUpdatePerLine) {
  server_.service().AddJob(RunningJob("w"));
  server_.service().SetWatchScript(Script("w", v1::JOB_STATE_SUCCEEDED));
  CliResult r = Run({"watch", "w", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const json j = json::parse(line);
    EXPECT_EQ(j["sequence"], n + 1);
    ++n;
  }
  EXPECT_EQ(n, 4);
}

TEST_F(CommandsTest, WatchOfMissingJobExitsFour) { EXPECT_EQ(Run({"watch", "ghost"}).code, 4); }

TEST_F(CommandsTest, SetOffloadRatioSendsRatioAndGeneration) {
  server_.service().AddJob(RunningJob("p"));
  CliResult r = Run({"set", "offload-ratio", "p", "0.4"});
  ASSERT_EQ(r.code, 0) << r.err;
  const v1::UpdatePolicyRequest req = server_.service().last_update();
  EXPECT_EQ(req.name(), "p");
  ASSERT_TRUE(req.has_offload_ratio());
  EXPECT_DOUBLE_EQ(req.offload_ratio(), 0.4);
  EXPECT_EQ(req.expected_generation(), 0);
  EXPECT_EQ(req.recompute(), v1::RECOMPUTE_AUTO);  // unchanged
  EXPECT_THAT(r.out, HasSubstr("job/p offload ratio set to 0.40 (generation 3)"));

  CliResult zero = Run({"set", "offload-ratio", "p", "0"});
  ASSERT_EQ(zero.code, 0) << zero.err;
  EXPECT_TRUE(server_.service().last_update().has_offload_ratio());  // 0 is a setting
  EXPECT_DOUBLE_EQ(server_.service().last_update().offload_ratio(), 0.0);

  CliResult stale = Run({"set", "offload-ratio", "p", "1", "--expected-generation", "1"});
  EXPECT_EQ(stale.code, 7);
  EXPECT_EQ(server_.service().last_update().expected_generation(), 1);
}

TEST_F(CommandsTest, MissingTokenExitsFiveWithAHint) {
  server_.service().RequireToken("t0k3n");
  server_.service().AddJob(RunningJob("a"));
  CliResult r = Run({"get", "a"});
  EXPECT_EQ(r.code, 5);
  EXPECT_THAT(r.err, HasSubstr("--token-file"));
  EXPECT_THAT(server_.service().authorizations(), ElementsAre(""));
}

TEST_F(CommandsTest, TokenFromEnvOrFileIsSentAsBearer) {
  server_.service().RequireToken("t0k3n");
  server_.service().AddJob(RunningJob("a"));
  CliResult env = Run({"get", "a"}, {{"CHRONOS_TOKEN", "t0k3n"}});
  EXPECT_EQ(env.code, 0) << env.err;
  const std::string dir = ScratchDir("token");
  const std::string file = WriteFile(dir + "/token", "t0k3n\n");
  CliResult flag = Run({"get", "a", "--token-file", file}, {{"CHRONOS_TOKEN", "n0t-th3-t0k3n"}});
  EXPECT_EQ(flag.code, 0) << flag.err;
  EXPECT_THAT(server_.service().authorizations(), ElementsAre("Bearer t0k3n", "Bearer t0k3n"));
  // The presented secret must never be echoed back (the message itself may
  // well say the token was wrong).
  CliResult wrong = Run({"get", "a"}, {{"CHRONOS_TOKEN", "n0t-th3-t0k3n"}});
  EXPECT_EQ(wrong.code, 5);
  EXPECT_THAT(wrong.err, Not(HasSubstr("n0t-th3-t0k3n")));
  EXPECT_THAT(wrong.out, Not(HasSubstr("n0t-th3-t0k3n")));
}

TEST_F(CommandsTest, ServerFromConfigFileContext) {
  server_.service().AddJob(RunningJob("a"));
  const std::string dir = ScratchDir("ctx");
  const std::string config = WriteFile(
      dir + "/config.yaml",
      "current-context: here\ncontexts:\n  - name: here\n    server: " + server_.address() + "\n");
  CliResult r = RunCli({"get", "a"}, {{"CHRONOS_CONFIG", config}});
  EXPECT_EQ(r.code, 0) << r.err;
  CliResult env_wins =
      RunCli({"get", "a"}, {{"CHRONOS_CONFIG", config}, {"CHRONOS_SERVER", "127.0.0.1:1"}});
  EXPECT_EQ(env_wins.code, 6);
  EXPECT_THAT(env_wins.err, HasSubstr("CHRONOS_SERVER"));
}

TEST_F(CommandsTest, WorkersTableAndJson) {
  v1::ListWorkersResponse workers;
  v1::WorkerStatus* w = workers.add_workers();
  w->set_worker_id("w-1");
  w->mutable_info()->set_name("node-a");
  w->set_state(v1::WORKER_STATE_IDLE);
  w->set_attached(true);
  server_.service().SetWorkers(workers);
  CliResult r = Run({"workers"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("node-a"));
  EXPECT_THAT(r.out, HasSubstr("IDLE"));
  CliResult js = Run({"workers", "-o", "json"});
  EXPECT_EQ(json::parse(js.out)["workers"][0]["worker_id"], "w-1");
}

TEST_F(CommandsTest, HealthIsServingAndUnknownServiceIsNotFound) {
  CliResult r = Run({"health"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  CliResult js = Run({"health", "-o", "json"});
  EXPECT_EQ(json::parse(js.out)["status"], "SERVING");
  EXPECT_EQ(Run({"health", "--service", "no.such.Service"}).code, 4);
  EXPECT_EQ(RunCli({"health", "--server", "127.0.0.1:1", "--request-timeout", "2s"}).code, 6);
}

}  // namespace
}  // namespace chronos::client
