// The cluster on several hosts: the coordinator and three CPU workers each
// run on a test host of their own (a network namespace with its own
// address, joined to the others by veth pairs and a bridge; see
// tests/e2e/test_hosts.h), and workers advertise their own addresses
// (--advertise-host). A two-stage job trains across two hosts, then one of
// its hosts' link is cut: the coordinator hears no more heartbeats, stops the
// attempt, and restarts the job from its checkpoint on the remaining hosts
// (the spare and the survivor). When the link comes back the worker
// registers again. Skipped, saying why, where namespaces cannot be made.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/e2e/test_hosts.h"

namespace chronos::e2e {
namespace {

using nlohmann::json;

constexpr int kWorkers = 3;  // two stages and a spare
constexpr int kIterations = 24;

std::string State(const json& job) {
  std::string s = job["status"].value("state", "");
  return absl::StartsWith(s, "JOB_STATE_") ? s.substr(10) : s;
}

bool Terminal(const json& job) {
  const std::string s = State(job);
  return s == "SUCCEEDED" || s == "FAILED" || s == "CANCELLED";
}

// Which worker (0..kWorkers-1) a worker id belongs to; -1 if none.
int WorkerIndex(const std::string& worker_id) {
  for (int i = 0; i < kWorkers; ++i) {
    if (absl::StartsWith(worker_id, Cluster::WorkerName(i) + "-")) return i;
  }
  return -1;
}

// `chronosctl workers -o json`'s workers, by name.
std::map<std::string, json> WorkersByName(Cluster& c) {
  std::map<std::string, json> out;
  CommandResult r = c.Ctl({"workers", "-o", "json"}, absl::Seconds(30));
  if (r.exit_code != 0) return out;
  const json all = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (all.is_discarded()) return out;
  for (const json& w : all["workers"]) out[w["info"].value("name", "")] = w;
  return out;
}

void TrainAcrossHostsAndCutALink() {
  absl::StatusOr<std::vector<TestHost>> hosts = MakeHosts({"coord", "host0", "host1", "host2"});
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  const TestHost& coord = (*hosts)[0];
  Cluster::Options o;
  o.workers = kWorkers;
  o.heartbeat_interval_ms = 500;  // dead after 3 missed: 1.5 s
  o.coordinator_host = {coord.netns, coord.address};
  for (int i = 0; i < kWorkers; ++i) {
    o.worker_hosts.push_back({(*hosts)[i + 1].netns, (*hosts)[i + 1].address});
  }
  absl::StatusOr<std::unique_ptr<Cluster>> started = Cluster::Start(o);
  ASSERT_TRUE(started.ok()) << started.status();
  Cluster& c = **started;
  ASSERT_TRUE(absl::StartsWith(c.grpc_address(), coord.address + ":")) << c.grpc_address();

  // Each worker registered from its own host, with that host's address.
  std::map<std::string, json> workers;
  for (int i = 0; i < 150 && workers.size() < kWorkers; ++i) {
    workers = WorkersByName(c);
    if (workers.size() < kWorkers) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(workers.size(), static_cast<size_t>(kWorkers)) << c.Logs();
  for (int i = 0; i < kWorkers; ++i) {
    EXPECT_EQ(workers[Cluster::WorkerName(i)]["info"].value("advertise_host", ""),
              (*hosts)[i + 1].address);
  }

  const std::string job = "e2e-hosts";
  const std::string spec = c.WriteFile(
      "hosts.yaml",
      absl::StrCat(
          "name: ", job, "\n",
          "model:    {layers: 4, hidden: 64, heads: 4, ffn_hidden: 128, vocab: 256, seq_len: 64}\n",
          "data:     {path: ", CHRONOS_SOURCE_DIR,
          "/../shared/data/tinyshakespeare.txt, format: text}\n",
          "training: {iterations: ", kIterations,
          ", micro_batch_size: 4, microbatches: 8, lr: 1.0e-3, seed: 7, precision: fp32, "
          "checkpoint_every: 4, checkpoint_dir: ",
          c.dir(), "/ckpt}\n", "parallel: {pipeline: 2, data: 1}\n", "schedule: {kind: 1f1b}\n",
          "device:   {profile: cpu}\n"));
  CommandResult submit = c.Ctl({"submit", "-f", spec});
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;
  absl::StatusOr<json> running = c.WaitJob(
      job,
      [](const json& j) {
        // Two iterations past a checkpoint, so that the cut most likely
        // leaves some to redo (the losses of those are compared below).
        const int64_t checkpoint = j["status"].value("checkpoint_iteration", int64_t{0});
        return Terminal(j) ||
               (checkpoint >= 4 && j["status"].value("iteration", int64_t{0}) >= checkpoint + 2);
      },
      absl::Seconds(30));
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(State(*running), "RUNNING") << running->dump(1);

  // The two stages run on two hosts, and their activations and gradients
  // crossed those hosts' links (about 1 MiB per iteration each way here);
  // the spare's link carried only its heartbeats.
  std::map<int, int> stage_of;  // worker index -> stage
  for (const json& a : (*running)["status"]["assignments"]) {
    stage_of[WorkerIndex(a.value("worker_id", ""))] = a.value("device", 0);
  }
  ASSERT_EQ(stage_of.size(), 2u) << (*running)["status"].dump(1);
  int spare = -1, victim = -1;
  for (int i = 0; i < kWorkers; ++i) {
    absl::StatusOr<int64_t> bytes = LinkBytes((*hosts)[i + 1]);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    if (stage_of.count(i) == 0) {
      spare = i;
      EXPECT_LT(*bytes, 1 << 20) << "spare host" << i;
    } else {
      EXPECT_GT(*bytes, 4 << 20) << "stage " << stage_of[i] << " on host" << i;
      if (stage_of[i] == 1) victim = i;
    }
  }
  ASSERT_GE(spare, 0);
  ASSERT_GE(victim, 0);

  // Cut stage 1's host off mid-job.
  const TestHost& cut = (*hosts)[victim + 1];
  ASSERT_TRUE(SetLink(cut, false).ok());
  absl::StatusOr<json> done = c.WaitJob(
      job, [](const json& j) { return Terminal(j); }, absl::Seconds(40));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(State(*done), "SUCCEEDED") << done->dump(1) << c.Logs();
  EXPECT_GE((*done)["status"].value("attempt", 0), 2);
  // The coordinator noticed by the missing heartbeats, and the job finished
  // on the hosts that were left.
  bool lost = false;
  for (const json& e : (*done)["events"]) {
    const std::string message = e.value("message", "");
    if (e.value("type", "") == "WorkerLost" &&
        absl::StrContains(message, Cluster::WorkerName(victim)) &&
        absl::StrContains(message, "stopped sending heartbeats")) {
      lost = true;
    }
  }
  EXPECT_TRUE(lost) << (*done)["events"].dump(1);
  std::set<int> last_attempt;
  for (const json& a : (*done)["status"]["assignments"]) {
    last_attempt.insert(WorkerIndex(a.value("worker_id", "")));
  }
  EXPECT_EQ(last_attempt.count(victim), 0u);
  EXPECT_EQ(last_attempt.count(spare), 1u);
  EXPECT_EQ(last_attempt.size(), 2u);
  // Every iteration is recorded, and those redone from the checkpoint on the
  // new pair of hosts repeat the first attempt's losses.
  std::map<int64_t, double> first;
  std::set<int64_t> seen;
  int redone = 0;
  for (const json& it : (*done)["iterations"]) {
    const int64_t n = it.value("iteration", int64_t{0});
    const double loss = it.value("loss", 0.0);
    seen.insert(n);
    if (it.value("attempt", 0) == 1) {
      first[n] = loss;
    } else if (first.count(n)) {
      EXPECT_NEAR(loss, first[n], 1e-4 * std::abs(first[n])) << "iteration " << n;
      ++redone;
    }
  }
  for (int64_t i = 1; i <= kIterations; ++i) EXPECT_TRUE(seen.count(i)) << "iteration " << i;
  std::cout << "hosts: stage 1 on host" << victim << " cut off; " << redone
            << " iterations redone on host" << spare << " matched\n";

  // The link comes back: the worker registers again and is idle.
  ASSERT_TRUE(SetLink(cut, true).ok());
  std::string state;
  for (int i = 0; i < 150; ++i) {
    std::map<std::string, json> now = WorkersByName(c);
    state = now[Cluster::WorkerName(victim)].value("state", "");
    if (state == "WORKER_STATE_IDLE") break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(state, "WORKER_STATE_IDLE") << c.Logs();
  // The namespaces go with this process; its files go now (kept on a
  // failure, for the logs).
  const std::string dir = c.dir();
  started->reset();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(MultiHostTest, JobTrainsAcrossHostsAndRecoversWhenAHostsLinkIsCut) {
  if (InsideTestNamespaces()) {
    TrainAcrossHostsAndCutALink();
    return;
  }
  absl::StatusOr<CommandResult> inside = RunInsideNamespaces(
      "MultiHostTest.JobTrainsAcrossHostsAndRecoversWhenAHostsLinkIsCut", absl::Seconds(85));
  if (absl::IsUnavailable(inside.status())) GTEST_SKIP() << inside.status().message();
  ASSERT_TRUE(inside.ok()) << inside.status();
  std::cout << inside->out;
  ASSERT_EQ(inside->exit_code, 0) << inside->out << inside->err;
  if (absl::StrContains(inside->out, "[  SKIPPED ]")) GTEST_SKIP() << inside->out;
}

}  // namespace
}  // namespace chronos::e2e
