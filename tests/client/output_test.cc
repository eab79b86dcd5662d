#include "client/output.h"

#include <sstream>

#include "client/exit_codes.h"
#include "client/job_view.h"
#include "client/plan_view.h"
#include "client/worker_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"
#include "yaml-cpp/yaml.h"

namespace chronos::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

v1::Job SampleJob() {
  v1::Job job;
  job.mutable_metadata()->set_name("llama");
  job.mutable_metadata()->set_generation(3);
  job.mutable_metadata()->mutable_created_at()->set_seconds(1700000000);  // 10 min before "now"
  job.mutable_spec()->set_name("llama");
  job.mutable_spec()->mutable_training()->set_iterations(200);
  job.mutable_spec()->mutable_parallel()->set_pipeline(4);
  job.mutable_spec()->mutable_schedule()->set_kind("chronos");
  job.mutable_spec()->mutable_memory()->set_hbm_budget_bytes(int64_t{80} << 30);
  v1::JobStatus* st = job.mutable_status();
  st->set_state(v1::JOB_STATE_RUNNING);
  st->set_iteration(12);
  st->set_loss(2.3134);
  st->set_tokens_per_second(5400);
  st->set_observed_generation(3);
  v1::DeviceIteration* d = st->add_devices();
  d->set_device(1);
  d->set_peak_activation_bytes(int64_t{5} << 33);  // > 2^32: must stay a number
  return job;
}

v1::PlanReport SamplePlan() {
  v1::PlanReport r;
  r.set_profile("h100");
  r.set_hbm_budget_bytes(int64_t{78} << 30);
  v1::SchedulePlan* p = r.add_plans();
  p->set_schedule("1f1b");
  p->set_bubble_ratio(0.18);
  p->set_iteration_seconds(1.9);
  p->set_tokens_per_second(17000);
  p->set_mfu(0.41);
  p->set_fits(true);
  v1::DevicePlan* d = p->add_devices();
  d->set_device(0);
  d->set_peak_bytes(int64_t{70} << 30);
  d->set_peak_activation_bytes(int64_t{40} << 30);
  d->set_weight_bytes(int64_t{10} << 30);
  d->set_recompute_seconds(0.25);
  v1::SchedulePlan* bad = r.add_plans();
  bad->set_schedule("zbh1");
  bad->set_error("parallel.chunks_per_device must be 1 for zbh1");
  return r;
}

TEST(OutputFormatTest, ParsesKnownFormatsAndNamesTheFlagOtherwise) {
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(*ParseOutputFormat("WIDE"), OutputFormat::kWide);
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("yaml"), OutputFormat::kYaml);
  absl::StatusOr<OutputFormat> bad = ParseOutputFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(IsUsageError(bad.status()));
  EXPECT_THAT(bad.status().message(), HasSubstr("--output"));
  EXPECT_THAT(bad.status().message(), HasSubstr("xml"));
}

TEST(OutputTableTest, ColumnsAlignWithoutTrailingSpaces) {
  std::ostringstream out;
  PrintTable(out, {"NAME", "STATE"}, {{"a-long-name", "RUNNING"}, {"b", "PENDING"}});
  EXPECT_EQ(out.str(),
            "NAME          STATE\n"
            "a-long-name   RUNNING\n"
            "b             PENDING\n");
}

TEST(JobOutputTest, TableShowsStateProgressAndAge) {
  std::ostringstream out;
  PrintJobTable(out, {SampleJob()}, /*wide=*/false, testing::FixedNow());
  const std::string s = out.str();
  EXPECT_THAT(s, HasSubstr("NAME"));
  EXPECT_THAT(s, HasSubstr("llama"));
  EXPECT_THAT(s, HasSubstr("RUNNING"));
  EXPECT_THAT(s, HasSubstr("12/200"));
  EXPECT_THAT(s, HasSubstr("2.3134"));
  EXPECT_THAT(s, HasSubstr("10m"));
  EXPECT_THAT(s, Not(HasSubstr("SCHEDULE")));
}

TEST(JobOutputTest, WideAddsScheduleDevicesAndGeneration) {
  std::ostringstream out;
  PrintJobTable(out, {SampleJob()}, /*wide=*/true, testing::FixedNow());
  EXPECT_THAT(out.str(), HasSubstr("SCHEDULE"));
  EXPECT_THAT(out.str(), HasSubstr("chronos"));
  EXPECT_THAT(out.str(), HasSubstr("4x1"));
  EXPECT_THAT(out.str(), HasSubstr("3/3"));
}

TEST(JobOutputTest, JsonIsTheApiObjectWithProtoNamesAndInt64Numbers) {
  std::ostringstream out;
  PrintMessage(out, SampleJob(), OutputFormat::kJson);
  const json j = json::parse(out.str());
  EXPECT_EQ(j["metadata"]["name"], "llama");
  EXPECT_EQ(j["status"]["state"], "JOB_STATE_RUNNING");
  ASSERT_TRUE(j["spec"]["memory"]["hbm_budget_bytes"].is_number_integer());
  EXPECT_EQ(j["spec"]["memory"]["hbm_budget_bytes"].get<int64_t>(), int64_t{80} << 30);
  ASSERT_TRUE(j["status"]["devices"][0]["peak_activation_bytes"].is_number_integer());
  EXPECT_EQ(j["status"]["devices"][0]["peak_activation_bytes"].get<int64_t>(), int64_t{5} << 33);
  EXPECT_FALSE(j["status"].contains("observedGeneration"));
  EXPECT_EQ(j["status"]["observed_generation"], 3);
}

TEST(JobOutputTest, YamlParsesBackToTheSameValues) {
  std::ostringstream out;
  PrintMessage(out, SampleJob(), OutputFormat::kYaml);
  YAML::Node y = YAML::Load(out.str());
  EXPECT_EQ(y["metadata"]["name"].as<std::string>(), "llama");
  EXPECT_EQ(y["status"]["iteration"].as<int64_t>(), 12);
  EXPECT_EQ(y["spec"]["memory"]["hbm_budget_bytes"].as<int64_t>(), int64_t{80} << 30);
}

TEST(JobOutputTest, DescribeHasEverySection) {
  v1::Job job = SampleJob();
  v1::Condition* c = job.mutable_status()->add_conditions();
  c->set_type("Running");
  c->set_status(true);
  c->set_reason("AllWorkersAttached");
  v1::StageAssignment* a = job.mutable_status()->add_assignments();
  a->set_device(0);
  a->set_worker_id("w-7");
  a->add_chunks(0);
  a->add_chunks(4);
  v1::IterationRecord* it = job.add_iterations();
  it->set_iteration(12);
  it->set_loss(2.31);
  v1::JobEvent* e = job.add_events();
  e->set_type("Started");
  e->set_message("4 workers");
  std::ostringstream out;
  PrintJobDescription(out, job, testing::FixedNow());
  const std::string s = out.str();
  for (const char* section :
       {"Name:", "State:", "Progress:", "Spec:", "Model:", "Memory:", "Conditions:", "Assignments:",
        "Memory per device", "Last iterations:", "Events:"}) {
    EXPECT_THAT(s, HasSubstr(section));
  }
  EXPECT_THAT(s, HasSubstr("AllWorkersAttached"));
  EXPECT_THAT(s, HasSubstr("w-7"));
  EXPECT_THAT(s, HasSubstr("0,4"));
  EXPECT_THAT(s, HasSubstr("40.00 GiB"));  // 5 << 33 bytes
  EXPECT_THAT(s, HasSubstr("80.00 GiB"));  // the budget
  EXPECT_THAT(s, HasSubstr("Started"));
}

TEST(JobOutputTest, DescribeShowsTheOrderSearchOnlyWhenItIsOn) {
  v1::Job job = SampleJob();
  std::ostringstream plain;
  PrintJobDescription(plain, job, testing::FixedNow());
  EXPECT_THAT(plain.str(), Not(HasSubstr("order search")));
  job.mutable_spec()->mutable_schedule()->set_order_search_steps(300000);
  job.mutable_spec()->mutable_schedule()->set_activation_cap_bytes(int64_t{11} << 30);
  std::ostringstream out;
  PrintJobDescription(out, job, testing::FixedNow());
  EXPECT_THAT(out.str(), HasSubstr("order search 300000 steps, activation cap 11.00 GiB"));
}

TEST(JobOutputTest, DescribeShowsTheWidthRecoveryChoseAgainstTheSpec) {
  v1::Job job;
  job.mutable_metadata()->set_name("shrunk");
  job.mutable_spec()->mutable_parallel()->set_pipeline(4);
  job.mutable_spec()->mutable_parallel()->set_data(3);
  job.mutable_spec()->mutable_training()->set_microbatches(8);
  job.mutable_status()->set_state(v1::JOB_STATE_RUNNING);
  job.mutable_status()->set_pipeline(3);
  job.mutable_status()->set_data(2);
  std::ostringstream out;
  PrintJobDescription(out, job, testing::FixedNow());
  // 8 x 3 sequences per iteration on 2 replicas: 12 micro-batches each.
  EXPECT_THAT(out.str(),
              HasSubstr("3 stages (spec: 4) x 2 replicas (spec: 3) of 12 micro-batches"));

  job.mutable_status()->set_data(3);
  std::ostringstream same;
  PrintJobDescription(same, job, testing::FixedNow());
  EXPECT_THAT(same.str(), Not(HasSubstr("replicas (spec")));
}

TEST(JobOutputTest, DescribeShowsAJobBeingPlannedAndSince) {
  v1::Job job = SampleJob();
  job.mutable_status()->set_state(v1::JOB_STATE_PLANNING);
  v1::Condition* c = job.mutable_status()->add_conditions();
  c->set_type("Planned");
  c->set_status(false);
  c->set_reason("Planning");
  *c->mutable_last_transition_time() = job.metadata().created_at();
  std::ostringstream out;
  PrintJobDescription(out, job, testing::FixedNow());
  EXPECT_THAT(out.str(), HasSubstr("State:          PLANNING"));
  EXPECT_THAT(out.str(), HasSubstr("Planning:       since "));
  EXPECT_THAT(out.str(), HasSubstr("admitted once the plan lands"));
  job.mutable_status()->set_state(v1::JOB_STATE_PENDING);
  c->set_status(true);
  std::ostringstream pending;
  PrintJobDescription(pending, job, testing::FixedNow());
  EXPECT_THAT(pending.str(), Not(HasSubstr("Planning:")));
}

TEST(JobOutputTest, ProgressLineShowsIterationLossThroughputMemoryAndOffload) {
  v1::IterationRecord it;
  it.set_iteration(7);
  it.set_loss(2.5);
  it.set_tokens_per_second(12345);
  it.set_iteration_seconds(0.41);
  it.set_offload_ratio(0.4);
  for (int d = 0; d < 2; ++d) {
    v1::DeviceIteration* dev = it.add_devices();
    dev->set_device(d);
    dev->set_hbm_peak_bytes(int64_t{1} << 30);
    dev->set_peak_activation_bytes(int64_t{300} << 20);
  }
  const std::string line = ProgressLine(it, 200);
  EXPECT_THAT(line, HasSubstr("iter 7/200"));
  EXPECT_THAT(line, HasSubstr("loss 2.5000"));
  EXPECT_THAT(line, HasSubstr("12.3k tok/s"));
  EXPECT_THAT(line, HasSubstr("offload 0.40"));
  EXPECT_THAT(line, HasSubstr("s0 hbm 1.00 GiB act 300.00 MiB"));
  EXPECT_THAT(line, HasSubstr("s1 "));
}

TEST(JobStateTest, ParsesShortAndFullNames) {
  EXPECT_EQ(*ParseJobState("running"), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(*ParseJobState("JOB_STATE_FAILED"), v1::JOB_STATE_FAILED);
  EXPECT_EQ(*ParseJobState("planning"), v1::JOB_STATE_PLANNING);
  absl::StatusOr<v1::JobState> bad = ParseJobState("done");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("--state"));
  EXPECT_EQ(JobStateName(v1::JOB_STATE_SUCCEEDED), "SUCCEEDED");
}

TEST(PlanOutputTest, TableHasOneRowPerScheduleAndPerDeviceBytes) {
  std::ostringstream out;
  PrintPlanReport(out, SamplePlan(), OutputFormat::kTable);
  const std::string s = out.str();
  EXPECT_THAT(s, HasSubstr("SCHEDULE"));
  EXPECT_THAT(s, HasSubstr("BUBBLE"));
  EXPECT_THAT(s, HasSubstr("MFU"));
  EXPECT_THAT(s, HasSubstr("1f1b"));
  EXPECT_THAT(s, HasSubstr("0.18"));
  EXPECT_THAT(s, HasSubstr("17.0k"));
  EXPECT_THAT(s, HasSubstr("0.41"));
  EXPECT_THAT(s, HasSubstr("70.00 GiB"));
  EXPECT_THAT(s, HasSubstr("ACTIVATIONS"));
  EXPECT_THAT(s, HasSubstr("OFFLOADED"));
  EXPECT_THAT(s, HasSubstr("RECOMPUTE"));
  EXPECT_THAT(s, HasSubstr("error: parallel.chunks_per_device"));
  EXPECT_THAT(s, Not(HasSubstr("MAX-LAYERS")));
}

TEST(PlanOutputTest, NamesTheOrderKeptAndWideListsEveryOrderCompared) {
  v1::PlanReport report = SamplePlan();
  v1::SchedulePlan* p = report.mutable_plans(0);
  p->set_order("periodic block, slotted BWs");
  v1::OrderCandidate* a = p->add_candidates();
  a->set_order("periodic block");
  a->set_fits(true);
  a->set_bubble_ratio(0.21);
  a->set_iteration_seconds(2.5);
  v1::OrderCandidate* b = p->add_candidates();
  b->set_order("periodic block, slotted BWs");
  b->set_fits(true);
  b->set_bubble_ratio(0.12);
  b->set_iteration_seconds(1.9);
  v1::OrderCandidate* c = p->add_candidates();
  c->set_order("list, in-flight cap 10");
  c->set_error("device 7 needs 154.43 GiB");
  std::ostringstream table;
  PrintPlanReport(table, report, OutputFormat::kTable);
  EXPECT_THAT(table.str(), HasSubstr("1f1b: kept periodic block, slotted BWs (the fastest that "
                                     "fits of 3 orders compared; -o wide lists them)"));
  EXPECT_THAT(table.str(), Not(HasSubstr("WHY NOT")));
  std::ostringstream wide;
  PrintPlanReport(wide, report, OutputFormat::kWide);
  EXPECT_THAT(wide.str(), HasSubstr("WHY NOT"));
  EXPECT_THAT(wide.str(), HasSubstr("list, in-flight cap 10"));
  EXPECT_THAT(wide.str(), HasSubstr("device 7 needs 154.43 GiB"));
  EXPECT_THAT(wide.str(), HasSubstr("0.21"));
  std::ostringstream js;
  PrintPlanReport(js, report, OutputFormat::kJson);
  const json j = json::parse(js.str());
  EXPECT_EQ(j["plans"][0]["order"], "periodic block, slotted BWs");
  ASSERT_EQ(j["plans"][0]["candidates"].size(), 3u);
  EXPECT_EQ(j["plans"][0]["candidates"][2]["error"], "device 7 needs 154.43 GiB");
}

TEST(PlanOutputTest, JsonKeepsPlanProtoFieldNamesAndNumbers) {
  std::ostringstream out;
  PrintPlanReport(out, SamplePlan(), OutputFormat::kJson);
  const json j = json::parse(out.str());
  ASSERT_EQ(j["plans"].size(), 2u);
  const json& p = j["plans"][0];
  EXPECT_EQ(p["schedule"], "1f1b");
  EXPECT_DOUBLE_EQ(p["bubble_ratio"].get<double>(), 0.18);
  EXPECT_DOUBLE_EQ(p["iteration_seconds"].get<double>(), 1.9);
  EXPECT_DOUBLE_EQ(p["tokens_per_second"].get<double>(), 17000);
  EXPECT_DOUBLE_EQ(p["mfu"].get<double>(), 0.41);
  EXPECT_EQ(p["fits"], true);
  const json& d = p["devices"][0];
  for (const char* key :
       {"device", "peak_bytes", "peak_activation_bytes", "weight_bytes", "gradient_bytes",
        "optimizer_bytes", "offloaded_bytes", "recompute_seconds"}) {
    EXPECT_TRUE(d.contains(key)) << key;
  }
  ASSERT_TRUE(d["peak_bytes"].is_number_integer());
  EXPECT_EQ(d["peak_bytes"].get<int64_t>(), int64_t{70} << 30);
  EXPECT_EQ(j["hbm_budget_bytes"].get<int64_t>(), int64_t{78} << 30);
}

TEST(PlanOutputTest, YamlOfPlanReport) {
  std::ostringstream out;
  PrintPlanReport(out, SamplePlan(), OutputFormat::kYaml);
  YAML::Node y = YAML::Load(out.str());
  EXPECT_EQ(y["plans"][0]["schedule"].as<std::string>(), "1f1b");
  EXPECT_EQ(y["plans"][0]["devices"][0]["peak_bytes"].as<int64_t>(), int64_t{70} << 30);
}

TEST(WorkerOutputTest, TableAndJson) {
  v1::ListWorkersResponse resp;
  v1::WorkerStatus* w = resp.add_workers();
  w->set_worker_id("w-1");
  w->mutable_info()->set_name("local-worker-0");
  w->mutable_info()->set_device("cpu");
  w->mutable_info()->set_hbm_bytes(int64_t{16} << 30);
  w->set_state(v1::WORKER_STATE_BUSY);
  w->set_attached(true);
  w->set_job("tiny");
  w->set_device(1);
  std::ostringstream table;
  PrintWorkers(table, resp, OutputFormat::kTable, testing::FixedNow());
  EXPECT_THAT(table.str(), HasSubstr("local-worker-0"));
  EXPECT_THAT(table.str(), HasSubstr("BUSY"));
  EXPECT_THAT(table.str(), HasSubstr("16.00 GiB"));
  std::ostringstream js;
  PrintWorkers(js, resp, OutputFormat::kJson, testing::FixedNow());
  const json j = json::parse(js.str());
  EXPECT_EQ(j["workers"][0]["info"]["hbm_bytes"].get<int64_t>(), int64_t{16} << 30);
  EXPECT_EQ(j["workers"][0]["state"], "WORKER_STATE_BUSY");
}

}  // namespace
}  // namespace chronos::client
