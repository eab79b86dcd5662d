#include "client/config.h"

#include "client/exit_codes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"

namespace chronos::client {
namespace {

using testing::Env;
using ::testing::HasSubstr;
using testing::LookupIn;
using testing::ScratchDir;
using testing::WriteFile;

constexpr char kTwoContexts[] = R"(
current-context: prod
contexts:
  - name: prod
    server: prod.example:7070
    token-file: prod.token
    tls-ca: ca.pem
  - name: dev
    server: dev.example:7070
)";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ScratchDir("config");
    config_ = WriteFile(dir_ + "/config.yaml", kTwoContexts);
    WriteFile(dir_ + "/prod.token", "prod-secret\n");
    WriteFile(dir_ + "/flag.token", "  flag-secret \n");
    WriteFile(dir_ + "/ca.pem", "-----BEGIN CERTIFICATE-----\n");
  }
  absl::StatusOr<Connection> Resolve(const ConnectionFlags& flags, Env env) {
    if (env.find("HOME") == env.end()) env["HOME"] = dir_ + "/home";
    return ResolveConnection(flags, LookupIn(env));
  }
  std::string dir_;
  std::string config_;
};

TEST_F(ConfigTest, DefaultsWithoutFlagsEnvOrConfig) {
  absl::StatusOr<Connection> c = Resolve({}, {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "127.0.0.1:7070");
  EXPECT_EQ(c->server_source, "default");
  EXPECT_EQ(c->token, "");
  EXPECT_FALSE(c->tls);
  EXPECT_EQ(c->request_timeout, absl::Seconds(10));
}

TEST_F(ConfigTest, ConfigFileCurrentContextSuppliesServerTokenAndCa) {
  absl::StatusOr<Connection> c = Resolve({}, {{"CHRONOS_CONFIG", config_}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "prod.example:7070");
  EXPECT_EQ(c->server_source, "context prod");
  EXPECT_EQ(c->token, "prod-secret");  // relative to the config file's folder, trimmed
  EXPECT_TRUE(c->tls);
  EXPECT_EQ(c->tls_ca_file, dir_ + "/ca.pem");
}

TEST_F(ConfigTest, EnvironmentBeatsConfigFile) {
  absl::StatusOr<Connection> c = Resolve(
      {}, {{"CHRONOS_CONFIG", config_}, {"CHRONOS_SERVER", "env:1"}, {"CHRONOS_TOKEN", "env-tok"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "env:1");
  EXPECT_EQ(c->server_source, "CHRONOS_SERVER");
  EXPECT_EQ(c->token, "env-tok");
}

TEST_F(ConfigTest, FlagsBeatEnvironmentAndConfigFile) {
  ConnectionFlags flags;
  flags.server = "flag:2";
  flags.token_file = dir_ + "/flag.token";
  absl::StatusOr<Connection> c = Resolve(
      flags, {{"CHRONOS_CONFIG", config_}, {"CHRONOS_SERVER", "env:1"}, {"CHRONOS_TOKEN", "env"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "flag:2");
  EXPECT_EQ(c->server_source, "--server");
  EXPECT_EQ(c->token, "flag-secret");
}

TEST_F(ConfigTest, ContextFlagAndEnvSelectAnotherContext) {
  ConnectionFlags flags;
  flags.context = "dev";
  absl::StatusOr<Connection> c = Resolve(flags, {{"CHRONOS_CONFIG", config_}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "dev.example:7070");
  EXPECT_EQ(c->token, "");
  EXPECT_FALSE(c->tls);

  c = Resolve({}, {{"CHRONOS_CONFIG", config_}, {"CHRONOS_CONTEXT", "dev"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "dev.example:7070");
}

TEST_F(ConfigTest, DefaultConfigPathIsUnderHomeOrXdg) {
  const std::string home = dir_ + "/home";
  std::filesystem::create_directories(home + "/.config/chronos");
  WriteFile(home + "/.config/chronos/config.yaml",
            "current-context: a\ncontexts: [{name: a, server: 'home:1'}]\n");
  absl::StatusOr<Connection> c = Resolve({}, {{"HOME", home}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "home:1");

  const std::string xdg = dir_ + "/xdg";
  std::filesystem::create_directories(xdg + "/chronos");
  WriteFile(xdg + "/chronos/config.yaml",
            "current-context: b\ncontexts: [{name: b, server: 'xdg:1'}]\n");
  c = Resolve({}, {{"HOME", home}, {"XDG_CONFIG_HOME", xdg}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "xdg:1");
}

TEST_F(ConfigTest, UnknownContextIsNotFoundAndListsKnownOnes) {
  ConnectionFlags flags;
  flags.context = "staging";
  absl::StatusOr<Connection> c = Resolve(flags, {{"CHRONOS_CONFIG", config_}});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("staging"));
  EXPECT_THAT(c.status().message(), HasSubstr("prod, dev"));
}

TEST_F(ConfigTest, MissingExplicitConfigFileIsAnError) {
  absl::StatusOr<Connection> c = Resolve({}, {{"CHRONOS_CONFIG", dir_ + "/nope.yaml"}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("CHRONOS_CONFIG"));
}

TEST_F(ConfigTest, UnknownKeyInConfigNamesIt) {
  WriteFile(config_, "contexts:\n  - name: a\n    servr: x:1\n");
  absl::StatusOr<Connection> c = Resolve({}, {{"CHRONOS_CONFIG", config_}});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("servr"));
  EXPECT_THAT(c.status().message(), HasSubstr("contexts[0]"));
}

TEST_F(ConfigTest, MissingTokenFileFlagIsUsageErrorNamingFlag) {
  ConnectionFlags flags;
  flags.token_file = dir_ + "/missing.token";
  absl::StatusOr<Connection> c = Resolve(flags, {});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(IsUsageError(c.status()));
  EXPECT_THAT(c.status().message(), HasSubstr("--token-file"));
}

TEST_F(ConfigTest, MissingTlsCaFlagIsUsageErrorNamingFlag) {
  ConnectionFlags flags;
  flags.tls_ca = dir_ + "/missing.pem";
  absl::StatusOr<Connection> c = Resolve(flags, {});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(IsUsageError(c.status()));
  EXPECT_THAT(c.status().message(), HasSubstr("--tls-ca"));
}

TEST(ParseDurationFlagTest, AcceptsUnitsBareSecondsAndZero) {
  EXPECT_EQ(*ParseRequestTimeout("10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseRequestTimeout("1m30s"), absl::Seconds(90));
  EXPECT_EQ(*ParseRequestTimeout("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseRequestTimeout("3"), absl::Seconds(3));
  EXPECT_EQ(*ParseRequestTimeout("0"), absl::ZeroDuration());
}

TEST(ParseDurationFlagTest, RejectsGarbageAndNegativeNamingTheFlag) {
  for (const char* bad : {"soon", "-1s", "nan", "inf"}) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag("--start-timeout", bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_TRUE(IsUsageError(d.status()));
    EXPECT_THAT(d.status().message(), HasSubstr("--start-timeout"));
  }
}

}  // namespace
}  // namespace chronos::client
