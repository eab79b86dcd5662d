// Runs the built chronosctl binary (CHRONOSCTL_PATH) the way scripts do,
// from the repository root (ctest's working directory).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace chronos::client {
namespace {

using json = nlohmann::json;

struct Output {
  int code = -1;
  std::string out;
};

Output RunBinary(const std::string& args) {
  const std::string cmd = std::string(CHRONOSCTL_PATH) + " " + args + " 2>/dev/null";
  Output o;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) o.out.append(buf.data(), n);
  const int status = pclose(p);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

TEST(ChronosctlBinaryTest, PlanJsonHasTheDocumentedFields) {
  Output o = RunBinary("plan -f examples/tiny-test.yaml -o json");
  ASSERT_EQ(o.code, 0) << o.out;
  const json j = json::parse(o.out);
  ASSERT_TRUE(j["plans"].is_array());
  ASSERT_FALSE(j["plans"].empty());
  bool saw_chronos = false;
  for (const json& p : j["plans"]) {
    ASSERT_TRUE(p["schedule"].is_string());
    if (!p["error"].get<std::string>().empty()) continue;
    if (p["schedule"] == "chronos") saw_chronos = true;
    EXPECT_TRUE(p["bubble_ratio"].is_number());
    EXPECT_GE(p["bubble_ratio"].get<double>(), 0.0);
    EXPECT_LT(p["bubble_ratio"].get<double>(), 1.0);
    EXPECT_GT(p["iteration_seconds"].get<double>(), 0.0);
    EXPECT_GT(p["tokens_per_second"].get<double>(), 0.0);
    EXPECT_TRUE(p["mfu"].is_number());
    EXPECT_TRUE(p["fits"].is_boolean());
    ASSERT_EQ(p["devices"].size(), 2u) << p["schedule"];  // pipeline: 2
    for (const json& d : p["devices"]) {
      EXPECT_TRUE(d["device"].is_number_integer());
      EXPECT_TRUE(d["peak_bytes"].is_number_integer());
      EXPECT_GT(d["peak_bytes"].get<int64_t>(), 0);
      EXPECT_TRUE(d["peak_activation_bytes"].is_number_integer());
      EXPECT_GT(d["weight_bytes"].get<int64_t>(), 0);
      EXPECT_TRUE(d["gradient_bytes"].is_number_integer());
      EXPECT_TRUE(d["optimizer_bytes"].is_number_integer());
      EXPECT_TRUE(d["offloaded_bytes"].is_number_integer());
      EXPECT_TRUE(d["recompute_seconds"].is_number());
    }
  }
  EXPECT_TRUE(saw_chronos);
}

TEST(ChronosctlBinaryTest, PlanMaxLayersAddsTheField) {
  // A small budget keeps the search short: at the cpu profile's 16 GiB a
  // model this narrow fits hundreds of thousands of layers.
  Output o = RunBinary(
      "plan -f examples/tiny-test.yaml --schedules 1f1b,chronos --max-layers "
      "--hbm-budget 64MiB -o json");
  ASSERT_EQ(o.code, 0) << o.out;
  const json j = json::parse(o.out);
  ASSERT_EQ(j["plans"].size(), 2u);
  EXPECT_EQ(j["plans"][0]["schedule"], "1f1b");
  EXPECT_EQ(j["plans"][1]["schedule"], "chronos");
  for (const json& p : j["plans"]) {
    EXPECT_GE(p["max_layers"].get<int>(), 4) << p["schedule"];
  }
}

TEST(ChronosctlBinaryTest, PlanTableHasARowPerSchedule) {
  Output o = RunBinary("plan -f examples/tiny-test.yaml --schedules 1f1b,chronos");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_THAT(o.out, ::testing::HasSubstr("SCHEDULE"));
  EXPECT_THAT(o.out, ::testing::HasSubstr("1f1b"));
  EXPECT_THAT(o.out, ::testing::HasSubstr("chronos"));
  EXPECT_THAT(o.out, ::testing::HasSubstr("PEAK"));
}

TEST(ChronosctlBinaryTest, ScheduleRendersAsciiAndChromeTrace) {
  Output ascii = RunBinary("schedule -f examples/tiny-test.yaml --schedule 1f1b --width 80");
  ASSERT_EQ(ascii.code, 0) << ascii.out;
  EXPECT_FALSE(ascii.out.empty());
  Output trace = RunBinary("schedule -f examples/tiny-test.yaml --render chrome-trace");
  ASSERT_EQ(trace.code, 0) << trace.out;
  EXPECT_NO_THROW(json::parse(trace.out));
}

TEST(ChronosctlBinaryTest, PlanWithProfileFile) {
  Output o = RunBinary(
      "plan -f examples/tiny-test.yaml --schedules chronos --profile "
      "examples/profiles/a100-40gb.yaml "
      "-o json");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(json::parse(o.out)["profile"], "a100-40gb");
}

TEST(ChronosctlBinaryTest, VersionAndUsageExitCodes) {
  EXPECT_EQ(RunBinary("version").code, 0);
  EXPECT_EQ(RunBinary("list --server 127.0.0.1:1").code, 6);
  EXPECT_EQ(RunBinary("plan").code, 2);
}

}  // namespace
}  // namespace chronos::client
