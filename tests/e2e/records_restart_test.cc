// Iteration records across coordinator crashes, with real processes: a
// two-stage job of 1,200 short iterations, the coordinator SIGKILLed at
// three pseudo-random points (seeded; the seed is printed, and
// CHRONOS_E2E_SEED=<seed> repeats a run) and restarted after a random
// outage, during which the workers train on and hold their reports. The job
// must succeed with the record of every iteration 1..N exactly once: the
// workers hold each report until the coordinator has stored its iteration
// (chronos.v1.ProgressAck), and send again whatever a restarted coordinator
// lacks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/e2e/e2e_cluster.h"

namespace chronos::e2e {
namespace {

using nlohmann::json;

constexpr int kIterations = 1200;

// Two stages of a tiny model: tens of iterations a second on two cores, so
// that the reports of hundreds of iterations are in flight around each kill.
std::string TinyJob(const std::string& name) {
  return absl::StrCat(
      "name: ", name, "\n",
      "model:    {layers: 2, hidden: 32, heads: 2, ffn_hidden: 64, vocab: 256, seq_len: 16}\n",
      "data:     {path: ", CHRONOS_SOURCE_DIR, "/../shared/data/tinyshakespeare.txt",
      ", format: text}\n", "training: {iterations: ", kIterations,
      ", micro_batch_size: 2, microbatches: 2, lr: 1.0e-3, seed: 3, precision: fp32}\n",
      "parallel: {pipeline: 2, data: 1, chunks_per_device: 1}\n", "schedule: {kind: 1f1b}\n",
      "memory:   {offload_ratio: 0}\n", "device:   {profile: cpu}\n");
}

// The job's state and iteration from `list` (no history: cheap to poll).
struct Listed {
  std::string state;
  int64_t iteration = -1;
};
Listed ListJob(Cluster& c, const std::string& name) {
  Listed out;
  CommandResult r = c.Ctl({"list", "-o", "json"}, absl::Seconds(20));
  if (r.exit_code != 0) return out;  // e.g. the coordinator is restarting
  const json all = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (all.is_discarded()) return out;
  for (const json& j : all.is_array() ? all : all["jobs"]) {
    if (j["metadata"].value("name", "") != name) continue;
    out.state = j["status"].value("state", "");
    out.iteration = j["status"].value("iteration", int64_t{0});
  }
  return out;
}

bool IsTerminal(const std::string& state) {
  return state == "JOB_STATE_SUCCEEDED" || state == "JOB_STATE_FAILED" ||
         state == "JOB_STATE_CANCELLED";
}

TEST(CoordinatorRestartTest, ThreeSigkillsAtSeededPointsLoseNoIterationRecordAndRepeatNone) {
  uint64_t seed = std::random_device()();
  if (const char* env = std::getenv("CHRONOS_E2E_SEED")) {
    ASSERT_TRUE(absl::SimpleAtoi(env, &seed)) << "CHRONOS_E2E_SEED=" << env;
  }
  std::mt19937_64 rng(seed);
  // Three kill points, apart, early enough that the job is still running;
  // and how long the coordinator stays down each time.
  std::vector<int64_t> points;
  std::uniform_int_distribution<int64_t> at(kIterations / 10, kIterations * 7 / 10);
  while (points.size() < 3) {
    const int64_t p = at(rng);
    if (std::all_of(points.begin(), points.end(),
                    [&](int64_t q) { return std::abs(p - q) >= kIterations / 10; })) {
      points.push_back(p);
    }
  }
  std::sort(points.begin(), points.end());
  std::vector<int> outage_ms;
  // Up to 3 s: at this job's pace the workers may fill their window of
  // unacknowledged reports and pause until the coordinator is back.
  std::uniform_int_distribution<int> down(200, 3000);
  for (size_t i = 0; i < points.size(); ++i) outage_ms.push_back(down(rng));
  std::cout << "seed " << seed << " (CHRONOS_E2E_SEED=" << seed
            << " repeats it): SIGKILL at iterations " << absl::StrJoin(points, ", ")
            << ", down for " << absl::StrJoin(outage_ms, ", ") << " ms\n";

  Cluster::Options o;
  o.workers = 2;
  absl::StatusOr<std::unique_ptr<Cluster>> started = Cluster::Start(o);
  ASSERT_TRUE(started.ok()) << started.status();
  Cluster& c = **started;
  const std::string job = "records-restart";
  const std::string spec = c.WriteFile("records.yaml", TinyJob(job));
  CommandResult submit = c.Ctl({"submit", "-f", spec});
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;

  for (size_t i = 0; i < points.size(); ++i) {
    const absl::Time deadline = absl::Now() + absl::Minutes(2);
    Listed l;
    while (absl::Now() < deadline) {
      l = ListJob(c, job);
      if (l.iteration >= points[i] || IsTerminal(l.state)) break;
      absl::SleepFor(absl::Milliseconds(50));  // polling a real process
    }
    ASSERT_EQ(l.state, "JOB_STATE_RUNNING")
        << "before kill " << i + 1 << " at iteration " << points[i] << ": " << l.iteration << "\n"
        << c.Logs();
    ASSERT_GE(l.iteration, points[i]) << c.Logs();
    c.KillCoordinator();
    std::cout << "kill " << i + 1 << " at iteration " << l.iteration << "\n";
    // The outage is the point: the workers train on meanwhile.
    absl::SleepFor(absl::Milliseconds(outage_ms[i]));
    ASSERT_TRUE(c.StartCoordinator().ok()) << c.Logs();
  }

  absl::StatusOr<json> done = c.WaitJob(
      job, [](const json& j) { return IsTerminal(j["status"].value("state", "")); },
      absl::Minutes(3));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ((*done)["status"].value("state", ""), "JOB_STATE_SUCCEEDED")
      << (*done)["status"].dump(1) << c.Logs();
  std::vector<int64_t> recorded;
  for (const json& it : (*done)["iterations"]) {
    recorded.push_back(it.value("iteration", int64_t{0}));
    EXPECT_EQ(it.value("attempt", 0), 1) << "iteration " << recorded.back();
  }
  std::vector<int64_t> want(kIterations);
  for (int i = 0; i < kIterations; ++i) want[i] = i + 1;
  std::vector<int64_t> missing, repeated;
  std::vector<int64_t> sorted = recorded;
  std::sort(sorted.begin(), sorted.end());
  std::set_difference(want.begin(), want.end(), sorted.begin(), sorted.end(),
                      std::back_inserter(missing));
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i] == sorted[i - 1]) repeated.push_back(sorted[i]);
  }
  EXPECT_TRUE(missing.empty()) << missing.size()
                               << " iterations without a record: " << absl::StrJoin(missing, ", ")
                               << " (seed " << seed << ")";
  EXPECT_TRUE(repeated.empty()) << repeated.size()
                                << " iterations recorded twice: " << absl::StrJoin(repeated, ", ")
                                << " (seed " << seed << ")";
  EXPECT_EQ(recorded.size(), want.size()) << "(seed " << seed << ")";
  EXPECT_TRUE(std::is_sorted(recorded.begin(), recorded.end()));  // listed by iteration
  int restarts = 0;
  for (const json& e : (*done)["events"]) {
    if (e.value("type", "") == "CoordinatorRestarted") ++restarts;
  }
  EXPECT_EQ(restarts, 3);
  // Kept for the logs when something failed.
  const std::string dir = c.dir();
  started->reset();
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chronos::e2e
