// End-to-end tests: chronos-coordinator and chronos-worker run as separate
// processes on localhost, driven with chronosctl, scraped over HTTP, killed
// with SIGKILL. One cluster (a coordinator and five CPU workers, one spare)
// serves every test in this file, in order; the tests use small models so
// the whole binary stays within a few minutes on a 2-core CI machine, and
// only the Shakespeare run trains to a real loss target. One test runs
// Debian's Prometheus against the cluster (skipped where it is missing).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/e2e/prometheus_server.h"

namespace chronos::e2e {
namespace {

using nlohmann::json;

constexpr int kWorkers = 5;  // four stages and one spare for recovery

std::string SourcePath(const std::string& rel) {
  return absl::StrCat(CHRONOS_SOURCE_DIR, "/", rel);
}

// A small 4-stage Chronos-Pipe job on tinyshakespeare: a few hundred ms per
// iteration with four processes on two cores.
std::string SmallJob(const std::string& name, int iterations, const std::string& extra_training,
                     const std::string& memory) {
  return absl::StrCat(
      "name: ", name, "\n",
      "model:    {layers: 8, hidden: 64, heads: 4, ffn_hidden: 128, vocab: 256, seq_len: 64}\n",
      "data:     {path: ", SourcePath("data/tinyshakespeare.txt"), ", format: text}\n",
      "training: {iterations: ", iterations,
      ", micro_batch_size: 4, microbatches: 8, lr: 1.0e-3, seed: 7, precision: fp32",
      extra_training, "}\n", "parallel: {pipeline: 4, data: 1, chunks_per_device: 2}\n",
      "schedule: {kind: chronos}\n", "memory:   {", memory, "}\n", "device:   {profile: cpu}\n");
}

std::vector<std::string> WorkerMetricNames() {
  std::ifstream in(SourcePath("tests/deploy/metric_names.txt"));
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "chronos_worker_")) names.push_back(line);
  }
  return names;
}

std::vector<std::string> CoordinatorMetricNames() {
  std::ifstream in(SourcePath("tests/deploy/metric_names.txt"));
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "chronos_coordinator_")) names.push_back(line);
  }
  return names;
}

// "RUNNING", ... (the JSON spells enums in full: JOB_STATE_RUNNING).
std::string State(const json& job) {
  std::string s = job["status"].value("state", "");
  const std::string prefix = "JOB_STATE_";
  return absl::StartsWith(s, prefix) ? s.substr(prefix.size()) : s;
}
int64_t Iteration(const json& job) {
  return job["status"].value("iteration", static_cast<int64_t>(0));
}
bool Terminal(const json& job) {
  const std::string s = State(job);
  return s == "SUCCEEDED" || s == "FAILED" || s == "CANCELLED";
}

// Iterations redone after a recovery repeat the first attempt's losses
// (same checkpoint, same data order) to float tolerance: `before` is the job
// as seen before the fault, `done` at the end, where each redone iteration's
// record replaced attempt 1's. Every iteration 1..iterations is recorded
// exactly once. Returns how many redone iterations were compared.
int ExpectRedoneLossesMatchAndEveryIterationOnce(const json& before, const json& done,
                                                 int64_t iterations) {
  std::map<int64_t, double> first_attempt;
  for (const json& it : before["iterations"]) {
    if (it.value("attempt", 0) == 1) {
      first_attempt[it.value("iteration", int64_t{0})] = it.value("loss", 0.0);
    }
  }
  int compared = 0;
  std::vector<int64_t> seen;
  for (const json& it : done["iterations"]) {
    const int64_t n = it.value("iteration", int64_t{0});
    seen.push_back(n);
    if (it.value("attempt", 0) > 1 && first_attempt.count(n)) {
      const double loss = it.value("loss", 0.0);
      EXPECT_NEAR(loss, first_attempt[n], 1e-4 * std::abs(first_attempt[n])) << "iteration " << n;
      ++compared;
    }
  }
  std::vector<int64_t> want;
  for (int64_t i = 1; i <= iterations; ++i) want.push_back(i);
  EXPECT_EQ(seen, want) << "every iteration once, listed in order";
  return compared;
}

class E2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The examples' relative data and checkpoint paths resolve against the
    // repository root, where the daemons inherit their working directory.
    ASSERT_EQ(chdir(CHRONOS_SOURCE_DIR), 0);
    Cluster::Options o;
    o.workers = kWorkers;
    absl::StatusOr<std::unique_ptr<Cluster>> c = Cluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = c->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(cluster_, nullptr) << "the cluster did not start"; }

  // Scrapes every worker and the coordinator.
  std::vector<Scrape> ScrapeWorkers() {
    std::vector<Scrape> out;
    for (const std::string& addr : cluster_->worker_metrics()) {
      absl::StatusOr<std::string> text = HttpGet(addr);
      EXPECT_TRUE(text.ok()) << addr << ": " << text.status();
      out.push_back(ParseScrape(text.ok() ? *text : ""));
    }
    return out;
  }

  // Submits SmallJob `job` with a checkpoint every 5 iterations and waits
  // until one exists and the next iterations are under way.
  absl::StatusOr<json> SubmitAndRunPastACheckpoint(const std::string& job, int iterations) {
    const std::string ckpt = absl::StrCat(cluster_->dir(), "/", job, "-checkpoints");
    const std::string spec = cluster_->WriteFile(
        absl::StrCat(job, ".yaml"),
        SmallJob(job, iterations, absl::StrCat(", checkpoint_every: 5, checkpoint_dir: ", ckpt),
                 "offload_ratio: 0"));
    CommandResult submit = cluster_->Ctl({"submit", "-f", spec});
    if (submit.exit_code != 0) {
      return absl::InternalError(absl::StrCat("submit: ", submit.out, submit.err));
    }
    return cluster_->WaitJob(
        job,
        [](const json& j) {
          return Terminal(j) ||
                 (j["status"].value("checkpoint_iteration", int64_t{0}) >= 5 && Iteration(j) >= 7);
        },
        absl::Minutes(3));
  }

  static Cluster* cluster_;
};
Cluster* E2eTest::cluster_ = nullptr;

// Sum of a metric over all workers' scrapes with `job`'s chronos_job label.
double JobSum(const std::vector<Scrape>& scrapes, const std::string& name, const std::string& job) {
  double sum = 0;
  bool any = false;
  for (const Scrape& s : scrapes) {
    const double v = s.Sum(name, {absl::StrCat("chronos_job=\"", job, "\"")});
    if (v >= 0) {
      sum += v;
      any = true;
    }
  }
  return any ? sum : -1;
}

TEST_F(E2eTest, LiveOffloadRatioAppliesWithinOneIterationAndMetricsMove) {
  const std::string job = "e2e-offload";
  const std::string spec = cluster_->WriteFile(
      "offload.yaml", SmallJob(job, 60, "", "offload_ratio: 0, recompute: none"));
  CommandResult submit = cluster_->Ctl({"submit", "-f", spec});
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;

  absl::StatusOr<json> running = cluster_->WaitJob(
      job, [](const json& j) { return Iteration(j) >= 3 || Terminal(j); }, absl::Minutes(3));
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(State(*running), "RUNNING");

  // First scrape, mid-run, before the policy change.
  const std::vector<Scrape> before = ScrapeWorkers();
  absl::StatusOr<std::string> coord_text = HttpGet(cluster_->coordinator_metrics());
  ASSERT_TRUE(coord_text.ok()) << coord_text.status();
  for (const Scrape& s : before) EXPECT_TRUE(PromtoolCheck(s.text).ok()) << PromtoolCheck(s.text);
  EXPECT_TRUE(PromtoolCheck(*coord_text).ok()) << PromtoolCheck(*coord_text);
  const Scrape coord = ParseScrape(*coord_text);
  for (const std::string& name : CoordinatorMetricNames()) {
    // Only finished jobs have a completion time: checked at the end.
    if (name == "chronos_coordinator_job_completion_timestamp_seconds") continue;
    EXPECT_TRUE(coord.Has(name)) << "coordinator does not export " << name;
  }
  EXPECT_EQ(coord.Sum("chronos_coordinator_job_state",
                      {"chronos_job=\"" + job + "\"", "state=\"running\""}),
            1);
  EXPECT_EQ(JobSum(before, "chronos_worker_offloaded_bytes_total", job), 0);
  EXPECT_EQ(JobSum(before, "chronos_worker_offload_ratio", job), 0);

  // The live change. Iterations completed (by every stage) before it:
  absl::StatusOr<json> at_set = cluster_->DescribeJson(job);
  ASSERT_TRUE(at_set.ok()) << at_set.status();
  const int64_t set_after = Iteration(*at_set);
  CommandResult set = cluster_->Ctl({"set", "offload-ratio", job, "0.5"});
  ASSERT_EQ(set.exit_code, 0) << set.out << set.err;

  absl::StatusOr<json> later = cluster_->WaitJob(
      job, [&](const json& j) { return Iteration(j) >= set_after + 6 || Terminal(j); },
      absl::Minutes(3));
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_EQ(State(*later), "RUNNING") << "the job ended before the second scrape";
  const std::vector<Scrape> after = ScrapeWorkers();
  for (const Scrape& s : after) EXPECT_TRUE(PromtoolCheck(s.text).ok()) << PromtoolCheck(s.text);

  // Every documented worker metric is exported by some worker (the loss by
  // the last stage only), and the series of the job move.
  std::set<std::string> families;
  for (const Scrape& s : after) {
    for (const auto& [name, type] : s.types) {
      if (s.Has(name)) families.insert(name);
    }
  }
  for (const std::string& name : WorkerMetricNames()) {
    if (name == "chronos_worker_pinned_host_limit_bytes") continue;  // GPU workers only
    EXPECT_TRUE(families.count(name)) << "no worker exports " << name;
  }
  for (const char* counter :
       {"chronos_worker_iterations_total", "chronos_worker_tokens_total",
        "chronos_worker_iteration_seconds_count", "chronos_worker_iteration_seconds_sum"}) {
    EXPECT_GT(JobSum(after, counter, job), JobSum(before, counter, job)) << counter;
  }
  // The offload knob took effect: ratio 0.5 everywhere, bytes now copied.
  int stages_seen = 0;
  for (const Scrape& s : after) {
    const double ratio = s.Sum("chronos_worker_offload_ratio", {"chronos_job=\"" + job + "\""});
    if (ratio < 0) continue;  // the spare worker
    ++stages_seen;
    EXPECT_DOUBLE_EQ(ratio, 0.5);
    EXPECT_GT(s.Sum("chronos_worker_offloaded_bytes_total", {"chronos_job=\"" + job + "\""}), 0);
    EXPECT_GT(s.Sum("chronos_worker_reloaded_bytes_total", {"chronos_job=\"" + job + "\""}), 0);
    EXPECT_EQ(s.Sum("chronos_worker_connected"), 1);
    const double mfu = s.Sum("chronos_worker_mfu_ratio", {"chronos_job=\"" + job + "\""});
    const double bubble = s.Sum("chronos_worker_bubble_ratio", {"chronos_job=\"" + job + "\""});
    EXPECT_GT(mfu, 0);
    EXPECT_LE(mfu, 1);
    EXPECT_GE(bubble, 0);
    EXPECT_LE(bubble, 1);
    EXPECT_GT(s.Sum("chronos_worker_hbm_capacity_bytes", {"chronos_job=\"" + job + "\""}), 0);
    EXPECT_GT(s.Sum("chronos_worker_activation_peak_bytes", {"chronos_job=\"" + job + "\""}), 0);
  }
  EXPECT_EQ(stages_seen, 4);
  const double loss = JobSum(after, "chronos_worker_loss", job);
  EXPECT_TRUE(loss > 0 && std::isfinite(loss)) << loss;

  // `watch` follows the job to its end and exits 0 on success.
  CommandResult watch = cluster_->Ctl({"watch", job}, absl::Minutes(5));
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err;
  EXPECT_TRUE(absl::StrContains(watch.out, "iter 60/60")) << watch.out;
  EXPECT_TRUE(absl::StrContains(watch.out, "PolicyApplied")) << watch.out;
  EXPECT_TRUE(absl::StrContains(watch.out, "SUCCEEDED")) << watch.out;

  // The iteration history: no offloading up to the change, offloading on
  // every stage from the iteration after the workers received it (the one
  // in flight may finish under the old policy). The workers say when they
  // received it, so how late their reports reach the coordinator does not
  // matter.
  absl::StatusOr<json> done = cluster_->DescribeJson(job);
  ASSERT_TRUE(done.ok()) << done.status();
  int64_t applied = 0;
  int64_t received = -1;
  for (const json& e : (*done)["events"]) {
    if (e.value("type", "") != "PolicyApplied") continue;
    // JSON leaves out a zero; the assertions below catch a missing field.
    applied = e.value("iteration", int64_t{0});
    received = e.value("policy_received_iteration", int64_t{0});
  }
  ASSERT_GT(applied, 0) << "no PolicyApplied event";
  ASSERT_GE(received, set_after) << "workers received the policy before it was set";
  EXPECT_GE(applied, received);
  EXPECT_LE(applied, received + 1);
  ASSERT_EQ((*done)["iterations"].size(), 60u);
  for (const json& it : (*done)["iterations"]) {
    const int64_t n = it.value("iteration", static_cast<int64_t>(0));
    ASSERT_EQ(it["devices"].size(), 4u);
    for (const json& d : it["devices"]) {
      const int64_t copied = d.value("offload_copied_bytes", static_cast<int64_t>(0));
      if (n <= set_after) EXPECT_EQ(copied, 0) << "iteration " << n;
      if (n >= applied) EXPECT_GT(copied, 0) << "iteration " << n;
    }
  }

  // describe's table names the policy change and the workers' memory.
  CommandResult describe = cluster_->Ctl({"describe", job});
  EXPECT_EQ(describe.exit_code, 0) << describe.err;
  EXPECT_TRUE(absl::StrContains(describe.out, "PolicyApplied")) << describe.out;
  EXPECT_TRUE(absl::StrContains(describe.out, "SUCCEEDED")) << describe.out;
  EXPECT_TRUE(absl::StrContains(describe.out, "OFFLOADED")) << describe.out;

  // The job's series are gone once it ended; the worker-wide ones stay.
  // A worker ends its assignment after the coordinator has recorded the
  // job's end (and tears the stage down first), so allow it a few seconds.
  std::vector<Scrape> ended = ScrapeWorkers();
  for (int i = 0; i < 100 && JobSum(ended, "chronos_worker_iterations_total", job) != -1; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    ended = ScrapeWorkers();
  }
  EXPECT_EQ(JobSum(ended, "chronos_worker_iterations_total", job), -1);
  for (const Scrape& s : ended) EXPECT_EQ(s.Sum("chronos_worker_info"), 1);
  // The fault counters stay (at 0: this job had none).
  EXPECT_EQ(JobSum(ended, "chronos_worker_faults_total", job), 0);
  // The coordinator's per-job series: succeeded, with its completion time.
  absl::StatusOr<std::string> coord_end = HttpGet(cluster_->coordinator_metrics());
  ASSERT_TRUE(coord_end.ok()) << coord_end.status();
  const Scrape coord_done = ParseScrape(*coord_end);
  EXPECT_EQ(coord_done.Sum("chronos_coordinator_job_state",
                           {"chronos_job=\"" + job + "\"", "state=\"succeeded\""}),
            1);
  EXPECT_EQ(coord_done.Sum("chronos_coordinator_job_state",
                           {"chronos_job=\"" + job + "\"", "state=\"running\""}),
            -1);
  EXPECT_GT(coord_done.Sum("chronos_coordinator_job_completion_timestamp_seconds",
                           {"chronos_job=\"" + job + "\""}),
            1.7e9);
}

// Every query of the Grafana dashboard, as Grafana sends it for the
// selected job, returns data from a real Prometheus that scrapes the real
// daemons during a real job; the alert rules load and evaluate without
// error. Then every chronosctl command of docs/runbooks.md runs against the
// live coordinator, in the document's order (its last one cancels the job).
TEST_F(E2eTest, DashboardQueriesReturnDataFromPrometheusAndRunbookCommandsRun) {
  if (!PrometheusServer::Binary().ok()) {
    GTEST_SKIP() << PrometheusServer::Binary().status();
  }
  const std::string job = "e2e-observed";
  const std::string spec =
      cluster_->WriteFile("observed.yaml", SmallJob(job, 2000, "", "offload_ratio: 0"));
  CommandResult submit = cluster_->Ctl({"submit", "-f", spec});
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;

  PrometheusServer::Options po;
  po.dir = cluster_->dir();
  po.coordinator = cluster_->coordinator_metrics();
  po.workers = cluster_->worker_metrics();
  po.rule_files = {SourcePath("deploy/prometheus/alerts.yml")};
  absl::StatusOr<std::unique_ptr<PrometheusServer>> prom = PrometheusServer::Start(po);
  ASSERT_TRUE(prom.ok()) << prom.status();

  // Until every stage's series have been scraped a few times mid-run.
  const std::string scraped =
      absl::StrCat("count(count_over_time(chronos_worker_iterations_total{chronos_job=\"", job,
                   "\"}[30s]) >= 5) >= 4");
  const absl::Time deadline = absl::Now() + absl::Minutes(3);
  absl::StatusOr<json> ready = (*prom)->Query(scraped);
  while (!(ready.ok() && !ready->empty()) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(500));
    ready = (*prom)->Query(scraped);
  }
  ASSERT_TRUE(ready.ok() && !ready->empty())
      << "the job's series were never scraped: " << (*prom)->Log() << cluster_->Logs();
  absl::StatusOr<json> still = cluster_->DescribeJson(job);
  ASSERT_TRUE(still.ok()) << still.status();
  ASSERT_EQ(State(*still), "RUNNING");

  std::ifstream in(SourcePath("deploy/grafana/dashboards/chronos.json"));
  const json dashboard = json::parse(in);
  std::vector<std::pair<std::string, std::string>> queries;  // panel title, PromQL
  std::function<void(const json&)> walk = [&](const json& panels) {
    for (const json& p : panels) {
      for (const json& t : p.value("targets", json::array())) {
        std::string expr = t.value("expr", "");
        expr = absl::StrReplaceAll(expr,
                                   {{"$__rate_interval", "15s"}, {"$job", job}, {"$stage", ".*"}});
        queries.emplace_back(p.value("title", ""), expr);
      }
      if (p.contains("panels")) walk(p["panels"]);
    }
  };
  walk(dashboard["panels"]);
  ASSERT_GE(queries.size(), 40u);
  for (const auto& [title, expr] : queries) {
    absl::StatusOr<json> result = (*prom)->Query(expr);
    ASSERT_TRUE(result.ok()) << title << ": " << result.status();
    EXPECT_FALSE(result->empty()) << "panel \"" << title << "\" has no data: " << expr;
  }

  // The alert rules load into a real Prometheus and evaluate cleanly over
  // the real series.
  absl::StatusOr<json> groups = (*prom)->Rules();
  ASSERT_TRUE(groups.ok()) << groups.status();
  int rules = 0;
  for (const json& g : *groups) {
    for (const json& r : g["rules"]) {
      ++rules;
      EXPECT_EQ(r.value("health", ""), "ok") << r.value("name", "") << ": " << r.dump();
    }
  }
  EXPECT_EQ(rules, 11);

  // docs/runbooks.md: each line of its sh blocks is a chronosctl command
  // (JOB: the alert's job, NAME: a worker), and each must succeed.
  std::ifstream rb(SourcePath("docs/runbooks.md"));
  std::string line;
  bool in_sh = false;
  int commands = 0;
  while (std::getline(rb, line)) {
    if (line == "```sh") {
      in_sh = true;
      continue;
    }
    if (line == "```") {
      in_sh = false;
      continue;
    }
    if (!in_sh || line.empty()) continue;
    std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_EQ(args[0], "chronosctl") << "a runbook command that is not chronosctl: " << line;
    args.erase(args.begin());
    for (std::string& a : args) {
      if (a == "JOB") a = job;
      if (a == "NAME") a = "e2e-worker-0";
    }
    CommandResult r = cluster_->Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.out << r.err;
    ++commands;
  }
  EXPECT_GE(commands, 15);
  absl::StatusOr<json> ended = cluster_->WaitJob(
      job, [](const json& j) { return Terminal(j); }, absl::Minutes(2));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(State(*ended), "CANCELLED");
}

TEST_F(E2eTest, ShakespeareTrainsBelowTwoNatsAcrossFourProcesses) {
  const std::string spec_path = SourcePath("examples/shakespeare-small.yaml");
  // The example's relative data and checkpoint paths resolve against the
  // repository root (the test's working directory), as in the README.
  CommandResult submit = cluster_->Ctl({"submit", "-f", spec_path});
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;
  CommandResult watch = cluster_->Ctl({"watch", "shakespeare-small"}, absl::Minutes(15));
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err << cluster_->Logs();
  EXPECT_TRUE(absl::StrContains(watch.out, "SUCCEEDED")) << watch.out;

  absl::StatusOr<json> job = cluster_->DescribeJson("shakespeare-small");
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(State(*job), "SUCCEEDED");
  const json& its = (*job)["iterations"];
  ASSERT_FALSE(its.empty());
  const double first = its.front().value("loss", 0.0);
  const double last = its.back().value("loss", 0.0);
  EXPECT_NEAR(first, std::log(256.0), 0.3) << "an untrained byte model starts near ln 256";
  EXPECT_LT(last, 2.0) << "final loss";
  // The curve, for the log (docs/training.md records one).
  std::string curve;
  for (const json& it : its) {
    const int64_t n = it.value("iteration", static_cast<int64_t>(0));
    if (n == 1 || n % 25 == 0) curve += absl::StrCat(n, ":", it.value("loss", 0.0), " ");
  }
  std::cout << "shakespeare-small loss curve: " << curve << "\n";

  CommandResult describe = cluster_->Ctl({"describe", "shakespeare-small"});
  EXPECT_EQ(describe.exit_code, 0) << describe.err;
  for (const char* part : {"SUCCEEDED", "Assignments:", "Events:", "Succeeded"}) {
    EXPECT_TRUE(absl::StrContains(describe.out, part)) << part << " in\n" << describe.out;
  }
}

TEST_F(E2eTest, CoordinatorSigkillMidRunLosesNoJobRecordAndTheJobFinishes) {
  const std::string job = "e2e-restart";
  const std::string spec =
      cluster_->WriteFile("restart.yaml", SmallJob(job, 40, "", "offload_ratio: 0"));
  CommandResult submit = cluster_->Ctl({"submit", "-f", spec});
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;
  absl::StatusOr<json> before = cluster_->WaitJob(
      job, [](const json& j) { return Iteration(j) >= 5 || Terminal(j); }, absl::Minutes(3));
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(State(*before), "RUNNING");
  CommandResult list_before = cluster_->Ctl({"list", "-o", "json"});
  ASSERT_EQ(list_before.exit_code, 0);

  cluster_->KillCoordinator();
  ASSERT_TRUE(cluster_->StartCoordinator().ok()) << cluster_->Logs();

  absl::StatusOr<json> done = cluster_->WaitJob(
      job, [](const json& j) { return Terminal(j); }, absl::Minutes(4));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(State(*done), "SUCCEEDED") << done->dump() << cluster_->Logs();
  // Same job, same identity, history kept: every event from before the kill
  // is still there, in order, and every iteration was recorded.
  EXPECT_EQ((*done)["metadata"]["uid"], (*before)["metadata"]["uid"]);
  std::vector<int64_t> seqs_before, seqs_after;
  for (const json& e : (*before)["events"]) seqs_before.push_back(e.value("sequence", int64_t{0}));
  for (const json& e : (*done)["events"]) seqs_after.push_back(e.value("sequence", int64_t{0}));
  ASSERT_GE(seqs_after.size(), seqs_before.size());
  EXPECT_TRUE(std::equal(seqs_before.begin(), seqs_before.end(), seqs_after.begin()));
  std::set<int64_t> iterations;
  for (const json& it : (*done)["iterations"]) iterations.insert(it.value("iteration", int64_t{0}));
  for (int64_t i = 1; i <= 40; ++i) EXPECT_TRUE(iterations.count(i)) << "iteration " << i;
  bool restarted = false;
  for (const json& e : (*done)["events"]) {
    if (e.value("type", "") == "CoordinatorRestarted") restarted = true;
  }
  EXPECT_TRUE(restarted) << "the new coordinator did not pick the running job up";
  // Every job listed before the kill is listed after it.
  CommandResult list_after = cluster_->Ctl({"list", "-o", "json"});
  ASSERT_EQ(list_after.exit_code, 0);
  json lb = json::parse(list_before.out, nullptr, false);
  json la = json::parse(list_after.out, nullptr, false);
  ASSERT_FALSE(lb.is_discarded());
  ASSERT_FALSE(la.is_discarded());
  std::set<std::string> names_after;
  const json& jobs_after = la.is_array() ? la : la["jobs"];
  for (const json& j : jobs_after) names_after.insert(j["metadata"].value("name", ""));
  const json& jobs_before = lb.is_array() ? lb : lb["jobs"];
  for (const json& j : jobs_before) {
    EXPECT_TRUE(names_after.count(j["metadata"].value("name", ""))) << j.dump();
  }
}

// Last: it kills a worker for good.
TEST_F(E2eTest, WorkerSigkillMidIterationRecoversFromCheckpointAndFinishes) {
  const std::string job = "e2e-chaos";
  // Kill once a checkpoint exists and the next iterations are under way.
  absl::StatusOr<json> running = SubmitAndRunPastACheckpoint(job, 30);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(State(*running), "RUNNING");
  // A worker of the job (not the spare): stage 1's.
  std::string victim_id;
  for (const json& a : (*running)["status"]["assignments"]) {
    if (a.value("device", 0) == 1) victim_id = a.value("worker_id", "");
  }
  ASSERT_FALSE(victim_id.empty());
  int victim = -1;
  for (int i = 0; i < kWorkers; ++i) {
    if (absl::StartsWith(victim_id, absl::StrCat("e2e-worker-", i, "-"))) victim = i;
  }
  ASSERT_GE(victim, 0) << victim_id;
  cluster_->KillWorker(victim);

  absl::StatusOr<json> done = cluster_->WaitJob(
      job, [](const json& j) { return Terminal(j); }, absl::Minutes(5));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(State(*done), "SUCCEEDED") << done->dump(1) << cluster_->Logs();
  EXPECT_GE((*done)["status"].value("attempt", 0), 2);
  bool recovering = false;
  for (const json& e : (*done)["events"]) {
    if (absl::EndsWith(e.value("state", ""), "RECOVERING") || e.value("type", "") == "Recovering") {
      recovering = true;
    }
  }
  EXPECT_TRUE(recovering) << (*done)["events"].dump(1);
  const int compared = ExpectRedoneLossesMatchAndEveryIterationOnce(*running, *done, 30);
  std::cout << "chaos: " << compared << " iterations redone after recovery matched\n";
}

// Two live worker processes under one name (say two on a host, neither
// given --name): the coordinator takes the later one for a restart of the
// first, and the first, reconnecting, is told so and exits instead of taking
// the name back, which would push the other out in turn, for ever.
TEST_F(E2eTest, SecondLiveWorkerUnderOneNameStopsTheFirstForGood) {
  auto start = [&](const std::string& tag) {
    return client::ChildProcess::Start(
        tag, CHRONOS_WORKER_PATH,
        {"--coordinator", cluster_->grpc_address(), "--metrics-listen", "127.0.0.1:0", "--listen",
         "127.0.0.1:0", "--device", "cpu", "--name", "e2e-twin", "--threads", "1"},
        absl::StrCat(cluster_->dir(), "/logs/", tag, ".log"));
  };
  auto live_twins = [&]() {
    CommandResult r = cluster_->Ctl({"workers", "-o", "json"});
    std::vector<std::string> ids;
    if (r.exit_code != 0) return ids;
    const json all = json::parse(r.out);
    for (const json& w : all["workers"]) {
      if (w["info"].value("name", "") == "e2e-twin" &&
          w.value("state", "") != "WORKER_STATE_DEAD") {
        ids.push_back(w.value("worker_id", ""));
      }
    }
    return ids;
  };
  absl::StatusOr<std::unique_ptr<client::ChildProcess>> first = start("twin-first");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->WaitForLine("chronos-worker listening", absl::Seconds(60)).ok());
  for (int i = 0; i < 600 && live_twins().size() != 1; ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_EQ(live_twins().size(), 1u) << cluster_->Ctl({"workers", "-o", "json"}).out;

  absl::StatusOr<std::unique_ptr<client::ChildProcess>> second = start("twin-second");
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE((*second)->WaitForLine("chronos-worker listening", absl::Seconds(60)).ok());
  ASSERT_TRUE((*first)->WaitExit(absl::Seconds(60))) << cluster_->Logs();
  EXPECT_EQ((*first)->ExitDescription(), "exited with status 1");
  std::ifstream log((*first)->log_path());
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(absl::StrContains(text, "two worker processes share one name")) << text;
  EXPECT_TRUE(absl::StrContains(text, "--name")) << text;
  // The second keeps the name, and stays.
  absl::SleepFor(absl::Seconds(3));
  EXPECT_FALSE((*second)->Exited()) << (*second)->ExitDescription();
  const std::vector<std::string> twins = live_twins();
  ASSERT_EQ(twins.size(), 1u);
  (*second)->Signal(SIGTERM);
  EXPECT_TRUE((*second)->WaitExit(absl::Seconds(30)));
}

// With no spare left, the coordinator waits for a replacement, then
// re-plans the job onto the three surviving workers; they restore the
// four-stage checkpoint by parameter name and finish.
TEST_F(E2eTest, WorkerLostWithNoSpareReplansOntoFewerStagesFromTheCheckpoint) {
  const std::string job = "e2e-narrow";
  absl::StatusOr<json> running = SubmitAndRunPastACheckpoint(job, 24);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(State(*running), "RUNNING");
  // Every worker outside the job goes (the spare, whatever earlier tests
  // left), then stage 1's: three workers remain for a four-stage job.
  std::set<int> in_job;
  int stage1 = -1;
  for (const json& a : (*running)["status"]["assignments"]) {
    const std::string id = a.value("worker_id", "");
    for (int i = 0; i < kWorkers; ++i) {
      if (!absl::StartsWith(id, absl::StrCat("e2e-worker-", i, "-"))) continue;
      in_job.insert(i);
      if (a.value("device", 0) == 1) stage1 = i;
    }
  }
  ASSERT_EQ(in_job.size(), 4u);
  ASSERT_GE(stage1, 0);
  for (int i = 0; i < kWorkers; ++i) {
    if (in_job.count(i) == 0) cluster_->KillWorker(i);
  }
  cluster_->KillWorker(stage1);

  absl::StatusOr<json> done = cluster_->WaitJob(
      job, [](const json& j) { return Terminal(j); }, absl::Minutes(5));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(State(*done), "SUCCEEDED") << done->dump(1) << cluster_->Logs();
  EXPECT_EQ((*done)["status"].value("pipeline", 0), 3) << (*done)["status"].dump(1);
  bool replanned = false;
  for (const json& e : (*done)["events"]) {
    if (e.value("type", "") == "Replanned" &&
        absl::StrContains(e.value("message", ""), "onto 3 stages")) {
      replanned = true;
    }
  }
  EXPECT_TRUE(replanned) << (*done)["events"].dump(1);
  // The redone iterations ran on three stages from the four-stage checkpoint.
  const int compared = ExpectRedoneLossesMatchAndEveryIterationOnce(*running, *done, 24);
  EXPECT_GE(compared, 1);
  std::cout << "narrow: " << compared << " iterations redone on 3 stages matched\n";
}

}  // namespace
}  // namespace chronos::e2e
