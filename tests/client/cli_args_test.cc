// Command-line validation: every mistake exits 2 (or 3 for a spec) with an
// "error:" line that names the flag or field, before any server is called.
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/test_util.h"

namespace chronos::client {
namespace {

using testing::CliResult;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCli;
using testing::ScratchDir;
using ::testing::StartsWith;
using testing::TinySpecYaml;
using testing::WriteFile;

// Nothing listens here; commands that got as far as a call would exit 6.
constexpr char kDeadServer[] = "127.0.0.1:1";

TEST(CliArgsTest, BadOutputFormatNamesTheFlag) {
  CliResult r = RunCli({"list", "-o", "xml", "--server", kDeadServer});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, StartsWith("error: "));
  EXPECT_THAT(r.err, HasSubstr("--output"));
  EXPECT_THAT(r.err, HasSubstr("xml"));
}

TEST(CliArgsTest, BadOutputFormatIsRejectedForLocalCommandsToo) {
  CliResult r = RunCli({"version", "--output", "toml"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--output"));
}

TEST(CliArgsTest, OffloadRatioOutOfRangeNamesTheArgument) {
  for (const char* bad : {"1.5", "-0.1", "lots", "nan"}) {
    CliResult r = RunCli({"set", "offload-ratio", "job", bad, "--server", kDeadServer});
    EXPECT_EQ(r.code, 2) << bad;
    EXPECT_THAT(r.err, HasSubstr("offload-ratio")) << bad;
    EXPECT_THAT(r.err, HasSubstr("between 0 and 1")) << bad;
  }
}

TEST(CliArgsTest, SubmitWithoutFileNamesTheFlag) {
  CliResult r = RunCli({"submit"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, StartsWith("error: "));
  EXPECT_THAT(r.err, HasSubstr("--file"));
  EXPECT_THAT(r.err, HasSubstr("chronosctl submit --help"));
}

TEST(CliArgsTest, PlanWithoutFileNamesTheFlag) {
  CliResult r = RunCli({"plan"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--file"));
}

TEST(CliArgsTest, UnknownCommandAndMissingCommandAreUsageErrors) {
  EXPECT_EQ(RunCli({"frobnicate"}).code, 2);
  EXPECT_EQ(RunCli({}).code, 2);
  EXPECT_EQ(RunCli({"set"}).code, 2);
  EXPECT_EQ(RunCli({"local"}).code, 2);
}

TEST(CliArgsTest, UnknownFlagIsUsageError) {
  CliResult r = RunCli({"list", "--colour"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--colour"));
}

TEST(CliArgsTest, HelpExitsZeroAndListsCommands) {
  CliResult r = RunCli({"--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* cmd : {"submit", "get", "list", "describe", "watch", "cancel", "set", "plan",
                          "schedule", "workers", "health", "version", "local"}) {
    EXPECT_THAT(r.out, HasSubstr(cmd));
  }
  CliResult sub = RunCli({"plan", "--help"});
  EXPECT_EQ(sub.code, 0);
  EXPECT_THAT(sub.out, HasSubstr("--hbm-budget"));
}

TEST(CliArgsTest, GlobalFlagsMayFollowTheVerb) {
  CliResult r = RunCli({"version", "-o", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"client\""));
}

TEST(CliArgsTest, BadStateFilterNamesTheFlag) {
  CliResult r = RunCli({"list", "--state", "done", "--server", kDeadServer});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--state"));
}

TEST(CliArgsTest, BadRequestTimeoutNamesTheFlag) {
  CliResult r = RunCli({"list", "--request-timeout", "soon", "--server", kDeadServer});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--request-timeout"));
}

TEST(CliArgsTest, SubmitOfInvalidSpecExitsThreeNamingTheField) {
  const std::string dir = ScratchDir("badspec");
  const std::string spec =
      WriteFile(dir + "/job.yaml", "name: bad\nmodel: {layers: 0, hidden: 32, heads: 4}\n");
  CliResult r = RunCli({"submit", "-f", spec, "--server", kDeadServer});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, StartsWith("error: "));
  EXPECT_THAT(r.err, HasSubstr("model.layers"));
}

TEST(CliArgsTest, SubmitOfUnknownKeyExitsThreeNamingTheKey) {
  const std::string dir = ScratchDir("typo");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml() + "trainig: {}\n");
  CliResult r = RunCli({"submit", "-f", spec, "--server", kDeadServer});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("trainig"));
}

TEST(CliArgsTest, SubmitOfMissingFileExitsFourNamingThePath) {
  CliResult r = RunCli({"submit", "-f", "/nonexistent/job.yaml", "--server", kDeadServer});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/job.yaml"));
}

TEST(CliArgsTest, SubmitWithMissingProfileFileNamesDeviceProfile) {
  const std::string dir = ScratchDir("noprofile");
  std::string yaml = TinySpecYaml();
  yaml.replace(yaml.find("profile: cpu"), 12, "profile: ./no-such-profile.yaml");
  const std::string spec = WriteFile(dir + "/job.yaml", yaml);
  CliResult r = RunCli({"submit", "-f", spec, "--server", kDeadServer});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("device.profile"));
}

TEST(CliArgsTest, UnreachableServerExitsSixNamingTheAddress) {
  CliResult r = RunCli({"list", "--server", kDeadServer, "--request-timeout", "5s"});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr(kDeadServer));
  EXPECT_THAT(r.err, HasSubstr("--server"));
}

// gRPC would take "coordinator" (no port) and keep dialling port 443.
TEST(CliArgsTest, ServerWithoutAPortIsAUsageErrorNamingItsSource) {
  for (const char* bad : {"coordinator", "coordinator:0", "coordinator:99999", ":7070"}) {
    CliResult r = RunCli({"list", "--server", bad});
    EXPECT_EQ(r.code, 2) << bad << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("--server"));
    EXPECT_THAT(r.err, HasSubstr("HOST:PORT"));
  }
}

TEST(CliArgsTest, ScheduleNeedsExactlyOneOfJobAndFile) {
  EXPECT_EQ(RunCli({"schedule"}).code, 2);
  CliResult both = RunCli({"schedule", "job", "-f", "x.yaml"});
  EXPECT_EQ(both.code, 2);
  EXPECT_THAT(both.err, HasSubstr("-f/--file"));
  CliResult render = RunCli({"schedule", "-f", "x.yaml", "--render", "svg"});
  EXPECT_EQ(render.code, 2);
  EXPECT_THAT(render.err, HasSubstr("--render"));
}

TEST(CliArgsTest, PlanBadBudgetNamesTheFlag) {
  const std::string dir = ScratchDir("budget");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml());
  CliResult r = RunCli({"plan", "-f", spec, "--hbm-budget", "lots"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--hbm-budget"));
}

TEST(CliArgsTest, PlanBadProfileNamesTheFlag) {
  const std::string dir = ScratchDir("profile");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml());
  CliResult r = RunCli({"plan", "-f", spec, "--profile", "tpu-v9"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--profile"));
}

TEST(CliArgsTest, PlanUnknownScheduleNamesTheFlag) {
  const std::string dir = ScratchDir("schedules");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml());
  CliResult kind = RunCli({"plan", "-f", spec, "--schedules", "1f1b,chronoz"});
  EXPECT_EQ(kind.code, 2);
  EXPECT_THAT(kind.err, HasSubstr("--schedules"));
  EXPECT_THAT(kind.err, HasSubstr("chronoz"));
  CliResult variant = RunCli({"plan", "-f", spec, "--schedules", "chronos+turbo"});
  EXPECT_EQ(variant.code, 2);
  EXPECT_THAT(variant.err, HasSubstr("turbo"));
  CliResult good = RunCli({"plan", "-f", spec, "--schedules", "1f1b+recompute,chronos"});
  EXPECT_EQ(good.code, 0) << good.err;
  CliResult draw = RunCli({"schedule", "-f", spec, "--schedule", "zb-w"});
  EXPECT_EQ(draw.code, 2);
  EXPECT_THAT(draw.err, HasSubstr("--schedule"));
}

// The papers write ZB-H1 and 1F1B; each row reports the canonical name.
TEST(CliArgsTest, PlanAcceptsTheUsualSpellingsOfAKind) {
  const std::string dir = ScratchDir("spellings");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml());
  CliResult plan = RunCli(
      {"plan", "-f", spec, "--schedules", "ZB-H1,1F1B+Recompute,chronos-pipe", "-o", "json"});
  ASSERT_EQ(plan.code, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("\"schedule\": \"zbh1\""));
  EXPECT_THAT(plan.out, HasSubstr("\"schedule\": \"1f1b+recompute\""));
  EXPECT_THAT(plan.out, HasSubstr("\"schedule\": \"chronos\""));
  EXPECT_THAT(plan.out, Not(HasSubstr("ZB-H1")));
  CliResult draw = RunCli({"schedule", "-f", spec, "--schedule", "zb_h1"});
  EXPECT_EQ(draw.code, 0) << draw.err;
}

TEST(CliArgsTest, PlanMfuFloorNeedsMaxLayersAndARatio) {
  const std::string dir = ScratchDir("mfu-floor");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml());
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--min-mfu-share", "0.95"},
        std::vector<std::string>{"--max-layers", "--min-mfu-share", "1.5"},
        std::vector<std::string>{"--max-layers", "--min-mfu", "-0.1"}}) {
    std::vector<std::string> args = {"plan", "-f", spec};
    args.insert(args.end(), bad.begin(), bad.end());
    CliResult r = RunCli(args);
    EXPECT_EQ(r.code, 2) << bad[bad.size() - 2];
    EXPECT_THAT(r.err, HasSubstr(bad[bad.size() - 2])) << r.err;
  }
}

TEST(CliArgsTest, PlanMfuFloorHoldsEveryRowButTheReference) {
  const std::string dir = ScratchDir("mfu-floor-json");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml());
  CliResult r = RunCli({"plan", "-f", spec, "--schedules", "1f1b+plain,vhalf,chronos",
                        "--max-layers", "--min-mfu-share", "0.95", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const double reference = j.value("referenceMfu", j.value("reference_mfu", 0.0));
  const double floor = j.value("minMfu", j.value("min_mfu", 0.0));
  ASSERT_GT(reference, 0) << r.out;
  EXPECT_NEAR(floor, 0.95 * reference, 1e-9);
  for (const auto& plan : j["plans"]) {
    if (plan.value("schedule", "") == "1f1b+plain") continue;
    const int layers = plan.value("maxLayers", plan.value("max_layers", 0));
    if (layers > 0) EXPECT_GE(plan.value("mfu", 0.0), floor) << plan.dump();
  }
}

TEST(CliArgsTest, LocalRunValidatesWorkers) {
  const std::string dir = ScratchDir("local");
  const std::string spec = WriteFile(dir + "/job.yaml", TinySpecYaml());
  CliResult zero = RunCli({"local", "run", "-f", spec, "--workers", "0"});
  EXPECT_EQ(zero.code, 2);
  EXPECT_THAT(zero.err, HasSubstr("--workers"));
  CliResult few = RunCli({"local", "run", "-f", spec, "--workers", "1"});
  EXPECT_EQ(few.code, 2);
  EXPECT_THAT(few.err, HasSubstr("parallel.pipeline"));
  CliResult missing = RunCli({"local", "run", "-f", spec});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("--workers"));
}

TEST(CliArgsTest, LocalRunWithoutDaemonsNamesBinDir) {
  const std::string dir = ScratchDir("nobin");
  const std::string corpus = WriteFile(dir + "/input.txt", std::string(4096, 'a'));
  const std::string spec = WriteFile(
      dir + "/job.yaml", absl::StrReplaceAll(TinySpecYaml(), {{"data/input.txt", corpus}}));
  CliResult r = RunCli({"local", "run", "-f", spec, "--workers", "2", "--bin-dir", dir});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("--bin-dir"));
}

}  // namespace
}  // namespace chronos::client
