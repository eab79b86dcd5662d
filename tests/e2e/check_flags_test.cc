// `--check-flags` of both daemons, run as the binaries: every flag parsed
// and checked, exit 0 or 2 with a message naming the flag, and nothing read,
// created or bound (the files named exist only where the daemon runs).
// scripts/check-deploy.sh runs the chart's, the manifests' and the compose
// file's command lines this way.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/e2e/e2e_cluster.h"

namespace chronos::e2e {
namespace {

CommandResult Coordinator(std::vector<std::string> args) {
  args.push_back("--check-flags");
  return RunCommand(CHRONOS_COORDINATOR_PATH, args, absl::Seconds(30));
}

CommandResult Worker(std::vector<std::string> args) {
  args.push_back("--check-flags");
  return RunCommand(CHRONOS_WORKER_PATH, args, absl::Seconds(30));
}

// Refused with a non-zero exit, the message naming `flag`.
void ExpectRefused(const CommandResult& r, const std::string& flag) {
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, flag)) << "message does not name " << flag << ": " << r.err;
}

TEST(CheckFlagsTest, CoordinatorAcceptsAGoodCommandLineWithoutTouchingItsFiles) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("chronos-check-flags-" + std::to_string(getpid()));
  CommandResult r =
      Coordinator({"--listen=0.0.0.0:7070", "--data-dir=" + dir, "--token-file=/no/such/token",
                   "--tls-cert=/no/cert", "--tls-key=/no/key", "--allowed-data-root=/no/such/dir",
                   "--heartbeat-misses=3", "--max-restarts=5"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "flags OK")) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir)) << "--check-flags created the data directory";
}

TEST(CheckFlagsTest, CoordinatorRefusesDuplicatedUnknownAndBadFlagsNamingThem) {
  ExpectRefused(Coordinator({"--data-dir=/d", "--heartbeat-misses=3", "--heartbeat-misses=3"}),
                "--heartbeat-misses");
  ExpectRefused(Coordinator({"--data-dir=/d", "--log-level=debug"}), "--log-level");
  ExpectRefused(Coordinator({"--data-dir=/d", "--listen=coordinator"}), "--listen");
  ExpectRefused(Coordinator({"--data-dir=/d", "--heartbeat-interval-ms=0"}),
                "--heartbeat-interval-ms");
  ExpectRefused(Coordinator({"--data-dir=/d", "--tls-cert=/c"}), "--tls-key");
  ExpectRefused(Coordinator({}), "--data-dir");
}

TEST(CheckFlagsTest, WorkerAcceptsAGoodCommandLineWithoutOpeningItsDevice) {
  // cuda:3 on a machine without one: only the spelling is checked.
  CommandResult r =
      Worker({"--coordinator=chronos-coordinator.chronos.svc:7070", "--listen=0.0.0.0:7071",
              "--metrics-listen=0.0.0.0:9465", "--device=cuda:3", "--name=pod-0",
              "--advertise-host=10.0.0.7", "--token-file=/no/such/token", "--pinned-pool=32GiB"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "flags OK")) << r.out;
}

TEST(CheckFlagsTest, WorkerRefusesDuplicatedUnknownAndBadFlagsNamingThem) {
  ExpectRefused(Worker({"--device=cpu", "--device=cuda:1"}), "--device");
  ExpectRefused(Worker({"--device=gpu"}), "--device");
  ExpectRefused(Worker({"--log-level=debug"}), "--log-level");
  ExpectRefused(Worker({"--host-memory=lots"}), "--host-memory");
  ExpectRefused(Worker({"--coordinator=coordinator"}), "--coordinator");
  ExpectRefused(Worker({"--metrics-listen=0.0.0.0:99999"}), "--metrics-listen");
}

}  // namespace
}  // namespace chronos::e2e
