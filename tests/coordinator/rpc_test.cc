// core/rpc: status conversion, token comparison and files, health client.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "rpc/address.h"
#include "rpc/auth.h"
#include "rpc/credentials.h"
#include "rpc/health_client.h"
#include "rpc/status_convert.h"
#include "tests/coordinator/coordinator_harness.h"

namespace chronos::rpc {
namespace {

std::string TempFile(const std::string& name, const std::string& content) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            absl::StrCat("chronos_rpc_test_", ::getpid(), "_", name))
                               .string();
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(StatusConvertTest, RoundTripsEveryCanonicalCode) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status s(static_cast<absl::StatusCode>(code), code ? "why" : "");
    const grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(FromGrpcStatus(g), s);
  }
  EXPECT_EQ(ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(42), "x")).error_code(),
            grpc::StatusCode::UNKNOWN);
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
}

TEST(TokenCheckTest, TokensEqualIsExact) {
  EXPECT_TRUE(TokensEqual("s3cret", "s3cret"));
  EXPECT_FALSE(TokensEqual("s3cre", "s3cret"));
  EXPECT_FALSE(TokensEqual("s3crett", "s3cret"));
  EXPECT_FALSE(TokensEqual("S3cret", "s3cret"));
  EXPECT_FALSE(TokensEqual("", ""));  // an empty token never authenticates
}

TEST(TokenCheckTest, HealthAndReflectionAreExempt) {
  EXPECT_TRUE(IsAuthExempt("/grpc.health.v1.Health/Check"));
  EXPECT_TRUE(IsAuthExempt("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  EXPECT_FALSE(IsAuthExempt("/chronos.v1.ControlService/SubmitJob"));
  EXPECT_FALSE(IsAuthExempt("/grpc.health.v1.HealthX/Check"));
}

TEST(CredentialsTest, ReadTokenFileTrimsWhitespace) {
  const std::string path = TempFile("token", "  abc-123\n");
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "abc-123");
}

TEST(CredentialsTest, ReadTokenFileRejectsBadFilesWithoutEchoingThem) {
  EXPECT_EQ(ReadTokenFile("/nonexistent/token").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadTokenFile(TempFile("empty", "\n\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status two_lines = ReadTokenFile(TempFile("two", "secretA\nsecretB\n")).status();
  EXPECT_EQ(two_lines.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(two_lines.message().find("secretA"), std::string::npos);
  EXPECT_EQ(ReadTokenFile(TempFile("big", std::string(5000, 'a'))).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CredentialsTest, TokenFileFlagNamesTheFlagAndKeepsTheTokenOnError) {
  std::string token = "from-env";
  EXPECT_TRUE(LoadTokenFileFlag("", &token).ok());
  EXPECT_EQ(token, "from-env");
  const absl::Status missing = LoadTokenFileFlag("/nonexistent/token", &token);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message().rfind("--token-file: ", 0), 0u) << missing.message();
  EXPECT_EQ(token, "from-env");
  ASSERT_TRUE(LoadTokenFileFlag(TempFile("flag", "xyz\n"), &token).ok());
  EXPECT_EQ(token, "xyz");
}

TEST(CredentialsTest, TlsNeedsCertAndKeyTogether) {
  EXPECT_TRUE(MakeServerCredentials("", "").ok());
  EXPECT_EQ(MakeServerCredentials("cert.pem", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeServerCredentials("/nonexistent/c", "/nonexistent/k").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(HealthClientTest, ReportsServingWithoutTokenAndUnavailableWhenDown) {
  coordinator::testing::Harness::Config config;
  config.token = "s3cret";
  coordinator::testing::Harness h(config);
  ASSERT_TRUE(h.Start().ok());
  absl::StatusOr<ServingStatus> st = CheckHealth(h.channel(), "", absl::Seconds(10));
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(ServingStatusName(*st), "SERVING");
  const std::string address = h.coordinator()->grpc_address();
  h.Stop();
  ChannelOptions o;
  o.target = address;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = CreateChannel(o);
  ASSERT_TRUE(ch.ok());
  EXPECT_FALSE(CheckHealth(*ch, "", absl::Milliseconds(300)).ok());
}

TEST(CheckTargetTest, AcceptsHostPortAndTargetUrisOnly) {
  for (const char* ok :
       {"127.0.0.1:7070", "localhost:1", "chronos-coordinator.ml.svc:7070", "[::1]:7070",
        "dns:///coordinator:7070", "unix:/tmp/chronos.sock", "ipv4:10.0.0.1:7070"}) {
    EXPECT_TRUE(CheckTarget(ok).ok()) << ok;
  }
  for (const char* bad : {"", "coordinator", "coordinator:", "coordinator:0", "coordinator:65536",
                          ":7070", "::1:7070", "host:http"}) {
    EXPECT_EQ(CheckTarget(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  ChannelOptions o;
  o.target = "coordinator";
  EXPECT_EQ(CreateChannel(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckListenAddressTest, AcceptsBindableHostPortsAndNamesTheFlag) {
  for (const char* ok : {"0.0.0.0:9464", "127.0.0.1:0", ":7070", "[::]:7070", "localhost:65535"}) {
    EXPECT_TRUE(CheckListenAddress("--listen", ok).ok()) << ok;
  }
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:-1", "::1:7070",
                          "host:http", "unix:/tmp/c.sock"}) {
    absl::Status s = CheckListenAddress("--metrics-listen", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message().rfind("--metrics-listen: ", 0), 0u) << s.message();
  }
  EXPECT_TRUE(CheckListenAddress("--listen", "unix:/tmp/c.sock", /*grpc_server=*/true).ok());
}

// gRPC would bind port 443 for a bare host and some other port for one
// over 65535; the coordinator refuses both before it binds anything.
TEST(CheckListenAddressTest, CoordinatorRefusesAListenAddressGrpcWouldMisread) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:99999"}) {
    coordinator::CoordinatorOptions options;
    options.listen = bad;
    options.metrics_listen = "";
    absl::StatusOr<std::unique_ptr<coordinator::Coordinator>> c =
        coordinator::Coordinator::Create(options);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("--listen"), std::string::npos) << c.status();
  }
}

}  // namespace
}  // namespace chronos::rpc
