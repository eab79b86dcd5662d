// Unit tests of the worker daemon's pieces that need no coordinator and no
// Torch: the metrics registry and its HTTP endpoint, the in-order progress
// reporter, fault classification. The daemon as a whole is exercised by
// tests/e2e.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "rpc/metrics_http_server.h"
#include "tests/testing/http_get.h"
#include "worker/daemon/assignment_run.h"
#include "worker/daemon/health_server.h"
#include "worker/daemon/host_probe.h"
#include "worker/daemon/progress_reporter.h"
#include "worker/daemon/worker_metrics.h"
#include "worker/input_fault.h"

namespace chronos::worker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Get(int port, const std::string& request_line) {
  return ::chronos::testing::HttpRequest(port, request_line);
}

int PortOf(const std::string& address) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port));
  return port;
}

// One worker per GPU on a node must not share a default name: the
// coordinator takes a second live registration under a name for a restart.
// One listening port, one process: a second worker health service on the
// same address fails to start naming it (no SO_REUSEPORT sharing).
TEST(HealthServerTest, ASecondServerCannotShareTheAddress) {
  HealthServer first;
  ASSERT_TRUE(first.Start("127.0.0.1:0").ok());
  HealthServer second;
  const absl::Status s = second.Start(first.address());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find(first.address()), std::string::npos) << s;
}

TEST(DefaultWorkerNameTest, GpuWorkersOnOneHostGetNamesOfTheirOwn) {
  EXPECT_EQ(DefaultWorkerName("node7", "cuda:0"), "node7-cuda0");
  EXPECT_EQ(DefaultWorkerName("node7", "cuda:3"), "node7-cuda3");
  EXPECT_EQ(DefaultWorkerName("node7", "cpu"), "node7");
}

TEST(WorkerMetricsTest, JobSeriesAppearWithLabelsMoveAndVanishWhenTheJobEndsButFaultsStay) {
  WorkerMetrics m("1.2.3", "cpu");
  const JobLabels l{"job-a", 2, 0};
  std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("chronos_worker_info{chronos_device=\"cpu\",version=\"1.2.3\"} 1"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_connected 0"));
  EXPECT_THAT(text, Not(HasSubstr("job-a")));

  m.BeginJob(l, 1000, 0.25);
  m.SetConnected(true);
  v1::ProgressReport r;
  r.set_tokens(1024);
  r.set_has_loss(true);
  r.set_loss(3.5);
  r.set_offload_ratio(0.25);
  v1::DeviceIteration* d = r.mutable_device();
  d->set_iteration_seconds(0.5);
  d->set_offload_copied_bytes(4096);
  d->set_reload_copied_bytes(4096);
  d->set_recompute_seconds(0.125);
  m.RecordIteration(l, r, IterationDerived{});
  m.RecordIteration(l, r, IterationDerived{});
  m.RecordFault(l, v1::FAULT_OUT_OF_MEMORY);
  text = m.Render();
  const std::string lab = "chronos_job=\"job-a\",data_rank=\"0\",stage=\"2\"";
  EXPECT_THAT(text, HasSubstr("chronos_worker_connected 1"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_iterations_total{" + lab + "} 2"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_tokens_total{" + lab + "} 2048"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_tokens_per_second{" + lab + "} 2048"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_offloaded_bytes_total{" + lab + "} 8192"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_recompute_seconds_total{" + lab + "} 0.25"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_loss{" + lab + "} 3.5"));
  // A CPU worker has no HBM: its capacity is the planner's budget, and says so.
  EXPECT_THAT(text,
              HasSubstr("chronos_worker_hbm_capacity_bytes{chronos_job=\"job-a\",data_rank=\"0\","
                        "source=\"budget\",stage=\"2\"} 1000"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_last_iteration_timestamp_seconds{" + lab + "} "));
  EXPECT_THAT(text, Not(HasSubstr("UUID=")));
  EXPECT_THAT(text, HasSubstr("chronos_worker_iteration_seconds_count{" + lab + "} 2"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_iteration_seconds_bucket{" + lab + ",le=\"0.5\"} 2"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_faults_total{chronos_job=\"job-a\",data_rank=\"0\","
                              "kind=\"out_of_memory\",stage=\"2\"} 1"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_faults_total{chronos_job=\"job-a\",data_rank=\"0\","
                              "kind=\"transport\",stage=\"2\"} 0"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_faults_total{chronos_job=\"job-a\",data_rank=\"0\","
                              "kind=\"input\",stage=\"2\"} 0"));

  m.EndJob(l);
  text = m.Render();
  // The fault counters keep their history; every other series goes.
  EXPECT_THAT(text, HasSubstr("chronos_worker_faults_total{chronos_job=\"job-a\",data_rank=\"0\","
                              "kind=\"out_of_memory\",stage=\"2\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("chronos_worker_iterations_total{")));
  EXPECT_THAT(text, Not(HasSubstr("chronos_worker_loss{")));
  EXPECT_THAT(text, HasSubstr("chronos_worker_info"));
  // The same job again on this worker counts on from there.
  m.BeginJob(l, 1000, 0);
  m.RecordFault(l, v1::FAULT_OUT_OF_MEMORY);
  EXPECT_THAT(m.Render(),
              HasSubstr("chronos_worker_faults_total{chronos_job=\"job-a\",data_rank=\"0\","
                        "kind=\"out_of_memory\",stage=\"2\"} 2"));
}

TEST(WorkerMetricsTest, GpuSeriesCarryDcgmLabelsAndTheDeviceCapacity) {
  WorkerMetrics m("1.2.3", "cuda:1");
  m.SetGpu(1, "GPU-0a1b2c3d-0000-1111-2222-333344445555", int64_t{8} << 30);
  const JobLabels l{"job-b", 0, 1};
  m.BeginJob(l, int64_t{80} << 30, 0);
  const std::string text = m.Render();
  const std::string dev = "UUID=\"GPU-0a1b2c3d-0000-1111-2222-333344445555\"";
  EXPECT_THAT(text, HasSubstr("chronos_worker_info{" + dev +
                              ",chronos_device=\"cuda:1\",gpu=\"1\",version=\"1.2.3\"} 1"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_hbm_capacity_bytes{" + dev +
                              ",chronos_job=\"job-b\",data_rank=\"1\",gpu=\"1\",source=\"device\","
                              "stage=\"0\"} 85899345920"));
  EXPECT_THAT(
      text, HasSubstr("chronos_worker_pinned_host_limit_bytes{" + dev + ",gpu=\"1\"} 8589934592"));
  EXPECT_THAT(text, HasSubstr("chronos_worker_faults_total{" + dev + ",chronos_job=\"job-b\""));
  // `device` means the DCGM device ("nvidia0") there; it is not reused here.
  EXPECT_THAT(text, Not(HasSubstr("{device=")));
  EXPECT_THAT(text, Not(HasSubstr(",device=")));
}

TEST(WorkerMetricsTest, ExportsProcessMetricsFromProc) {
  WorkerMetrics m("0", "cpu");
  const std::string text = m.Render();
  for (const char* name :
       {"process_cpu_seconds_total", "process_start_time_seconds", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_open_fds", "process_max_fds"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# TYPE ", name, " "))) << name;
  }
  // This process's resident set, as /proc/self/statm counts it (pages).
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  const double rss = resident_pages * static_cast<double>(sysconf(_SC_PAGESIZE));
  const size_t at = text.find("\nprocess_resident_memory_bytes ");
  ASSERT_NE(at, std::string::npos);
  const double got = std::stod(text.substr(at + 31));
  EXPECT_GT(got, 0.5 * rss);
  EXPECT_LT(got, 2.0 * rss);
  // Started within the last hour, not at the epoch or boot.
  const size_t st = text.find("\nprocess_start_time_seconds ");
  ASSERT_NE(st, std::string::npos);
  const double started = std::stod(text.substr(st + 28));
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_LE(started, now + 1);
  EXPECT_GT(started, now - 3600);
}

TEST(WorkerMetricsTest, ExportsEveryDocumentedWorkerFamily) {
  WorkerMetrics m("0", "cuda:0");
  m.SetGpu(0, "GPU-00000000-0000-0000-0000-000000000000", 1 << 30);
  const JobLabels l{"j", 3, 0};
  m.BeginJob(l, 1, 0);
  v1::ProgressReport r;
  r.set_has_loss(true);
  m.RecordIteration(l, r, IterationDerived{});
  const std::string text = m.Render();
  std::ifstream in(std::string(CHRONOS_SOURCE_DIR) + "/tests/deploy/metric_names.txt");
  std::string name;
  int checked = 0;
  while (std::getline(in, name)) {
    if (!absl::StartsWith(name, "chronos_worker_")) continue;
    EXPECT_THAT(text, HasSubstr("# TYPE " + name + " ")) << name;
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST(WorkerMetricsTest, ServesMetricsOverHttpOnPortZeroAndRefusesOtherPaths) {
  WorkerMetrics m("0", "cpu");
  int hook_calls = 0;
  m.SetCollectHook([&] { ++hook_calls; });
  ASSERT_TRUE(m.Serve("127.0.0.1:0").ok());
  const int port = PortOf(m.address());
  ASSERT_GT(port, 0);
  const std::string ok = Get(port, "GET /metrics HTTP/1.1");
  EXPECT_THAT(ok, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(ok, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(ok, HasSubstr("chronos_worker_info"));
  EXPECT_EQ(hook_calls, 1);
  EXPECT_THAT(Get(port, "GET / HTTP/1.1"), HasSubstr("404"));
  EXPECT_THAT(Get(port, "POST /metrics HTTP/1.1"), HasSubstr("405"));
  const std::string head = Get(port, "HEAD /metrics HTTP/1.1");
  EXPECT_THAT(head, HasSubstr("200 OK"));
  EXPECT_THAT(head, Not(HasSubstr("chronos_worker_info")));
  m.StopServing();
  EXPECT_EQ(Get(port, "GET /metrics HTTP/1.1"), "");
}

TEST(WorkerMetricsTest, ServeNamesTheFlagWhenThePortIsTaken) {
  WorkerMetrics a("0", "cpu"), b("0", "cpu");
  ASSERT_TRUE(a.Serve("127.0.0.1:0").ok());
  absl::Status s = b.Serve(a.address());
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("--metrics-listen"));
}

// One stage's side of the coordinator (coordinator/progress_tracker.h in
// miniature): takes the stage's reports in order without a gap, records an
// iteration once the other stages have reported it too (others_through),
// answers with what is durable and what it needs next, and on Restart()
// forgets every report it had not recorded. Fails calls as told.
class FakeCoordinator {
 public:
  absl::StatusOr<v1::ProgressAck> Send(const v1::ProgressReport& r) {
    absl::MutexLock lock(&mu_);
    attempts_.push_back(r.iteration());
    if (!failures_.empty()) {
      absl::Status s = failures_.front();
      failures_.erase(failures_.begin());
      return s;
    }
    v1::ProgressAck ack;
    if (r.iteration() == stop_at_) {
      ack.set_stop(true);
      return ack;
    }
    if (r.iteration() == delivered_ + 1) ++delivered_;
    Record();
    ack.set_durable_iteration(durable_);
    ack.set_next_iteration(delivered_ + 1);
    return ack;
  }
  void FailNext(absl::Status s) {
    absl::MutexLock lock(&mu_);
    failures_.push_back(s);
  }
  // The other stages have reported up to `n`.
  void SetOthers(int64_t n) {
    absl::MutexLock lock(&mu_);
    others_ = n;
    Record();
  }
  // SIGKILL and start again: only what was recorded is left.
  void Restart() {
    absl::MutexLock lock(&mu_);
    delivered_ = durable_;
  }
  // Start again from a copy of the store that ends at iteration `n`.
  void RestoreBackup(int64_t n) {
    absl::MutexLock lock(&mu_);
    durable_ = delivered_ = n;
  }
  void StopAt(int64_t iteration) {
    absl::MutexLock lock(&mu_);
    stop_at_ = iteration;
  }
  // Iterations recorded, in the order they were (a repeat is a duplicate).
  std::vector<int64_t> recorded() {
    absl::MutexLock lock(&mu_);
    return recorded_;
  }
  std::vector<int64_t> attempts() {
    absl::MutexLock lock(&mu_);
    return attempts_;
  }
  // Waits until this stage's report of `iteration` is held or recorded.
  bool WaitDelivered(int64_t iteration) {
    absl::MutexLock lock(&mu_);
    auto held = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return delivered_ >= iteration; };
    return mu_.AwaitWithTimeout(absl::Condition(&held), absl::Seconds(10));
  }

 private:
  void Record() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (durable_ < std::min(delivered_, others_)) recorded_.push_back(++durable_);
  }

  absl::Mutex mu_;
  std::vector<absl::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> attempts_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> recorded_ ABSL_GUARDED_BY(mu_);
  int64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t durable_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t others_ ABSL_GUARDED_BY(mu_) = 1 << 30;
  int64_t stop_at_ ABSL_GUARDED_BY(mu_) = -1;
};

v1::ProgressReport Report(int64_t it) {
  v1::ProgressReport r;
  r.set_iteration(it);
  return r;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

// Short pauses: the tests wait on conditions, never on the clock.
ProgressReporter::Options Fast(int64_t max_held = rpc::kMaxUnacknowledgedReports) {
  ProgressReporter::Options o;
  o.min_backoff = absl::Milliseconds(5);
  o.max_backoff = absl::Milliseconds(40);
  o.first_resend = absl::Milliseconds(5);
  o.max_held = max_held;
  return o;
}

class Reporter {
 public:
  explicit Reporter(FakeCoordinator* c, ProgressReporter::Options o = Fast())
      : r_([c](const v1::ProgressReport& p) { return c->Send(p); },
           [this](const std::string& why) {
             absl::MutexLock lock(&mu_);
             stops_.push_back(why);
           },
           [this](const absl::Status& s) {
             absl::MutexLock lock(&mu_);
             lost_.push_back(s);
           },
           o) {}
  ProgressReporter* operator->() { return &r_; }
  std::vector<std::string> stops() {
    absl::MutexLock lock(&mu_);
    return stops_;
  }
  std::vector<absl::Status> lost() {
    absl::MutexLock lock(&mu_);
    return lost_;
  }
  bool WaitLost() {
    absl::MutexLock lock(&mu_);
    auto any = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !lost_.empty(); };
    return mu_.AwaitWithTimeout(absl::Condition(&any), absl::Seconds(10));
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> stops_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> lost_ ABSL_GUARDED_BY(mu_);
  ProgressReporter r_;  // last: its thread may call on_stop
};

TEST(ProgressReporterTest, RetriesUnavailableAndDeliversInOrder) {
  FakeCoordinator c;
  c.FailNext(absl::UnavailableError("restarting"));
  c.FailNext(absl::InternalError("job store: disk I/O error"));
  Reporter r(&c);
  for (int i = 1; i <= 3; ++i) r->Enqueue(Report(i));
  ASSERT_TRUE(r->Flush(absl::Seconds(10)));
  EXPECT_EQ(c.recorded(), Range(1, 3));
  EXPECT_EQ(c.attempts(), (std::vector<int64_t>{1, 1, 1, 2, 3}));
  EXPECT_TRUE(r.stops().empty());
  EXPECT_EQ(r->held(), 0);
}

TEST(ProgressReporterTest, AReportIsHeldUntilTheCoordinatorStoredItsIteration) {
  FakeCoordinator c;
  c.SetOthers(0);  // the other stages have not reported yet
  Reporter r(&c);
  for (int i = 1; i <= 3; ++i) r->Enqueue(Report(i));
  ASSERT_TRUE(c.WaitDelivered(3));
  // Taken but not stored: still held, however long it takes.
  EXPECT_FALSE(r->Flush(absl::Milliseconds(100)));
  EXPECT_EQ(r->held(), 3);
  EXPECT_TRUE(c.recorded().empty());
  // The other stages catch up; with nothing new to send, the worker learns
  // it by sending its newest report again.
  c.SetOthers(3);
  ASSERT_TRUE(r->Flush(absl::Seconds(10)));
  EXPECT_EQ(r->held(), 0);
  EXPECT_EQ(c.recorded(), Range(1, 3));
}

TEST(ProgressReporterTest, ACoordinatorRestartLosesNoReportAndRecordsNoneTwice) {
  // Reported and taken, but the coordinator dies before the other stages'
  // reports complete the iterations: it comes back knowing only 1..2.
  FakeCoordinator c;
  c.SetOthers(2);
  Reporter r(&c);
  for (int i = 1; i <= 6; ++i) r->Enqueue(Report(i));
  ASSERT_TRUE(c.WaitDelivered(6));
  c.Restart();
  c.SetOthers(100);
  // Nothing tells this worker yet; its next report shows the gap, and it
  // goes back to the first report the coordinator lacks.
  for (int i = 7; i <= 9; ++i) r->Enqueue(Report(i));
  ASSERT_TRUE(r->Flush(absl::Seconds(10)));
  EXPECT_EQ(c.recorded(), Range(1, 9));

  // After a reconnect everything not stored goes again at once; what the
  // coordinator already holds is a harmless duplicate.
  c.SetOthers(9);
  for (int i = 10; i <= 12; ++i) r->Enqueue(Report(i));
  ASSERT_TRUE(c.WaitDelivered(12));
  c.Restart();
  r->ResendUnacknowledged();
  c.SetOthers(100);
  ASSERT_TRUE(r->Flush(absl::Seconds(10)));
  EXPECT_EQ(c.recorded(), Range(1, 12));
}

TEST(ProgressReporterTest, TheLastReportLostWithTheCoordinatorIsSentAgain) {
  // No later report and no reconnect notice: the re-sent newest report is
  // what tells the restarted coordinator (and the worker) about the gap.
  FakeCoordinator c;
  c.SetOthers(3);
  Reporter r(&c);
  for (int i = 1; i <= 5; ++i) r->Enqueue(Report(i));
  ASSERT_TRUE(c.WaitDelivered(5));
  c.Restart();
  c.SetOthers(5);
  ASSERT_TRUE(r->Flush(absl::Seconds(10)));
  EXPECT_EQ(c.recorded(), Range(1, 5));
}

TEST(ProgressReporterTest, ACoordinatorAskingForAReportItHadStoredEndsTheAttemptOnce) {
  // Its store was restored from a copy that ends at iteration 2, after it
  // had acknowledged 1..4 as stored: this worker no longer has 3 and 4.
  FakeCoordinator c;
  Reporter r(&c);
  for (int i = 1; i <= 4; ++i) r->Enqueue(Report(i));
  ASSERT_TRUE(r->Flush(absl::Seconds(10)));
  c.RestoreBackup(2);
  r->Enqueue(Report(5));
  ASSERT_TRUE(r.WaitLost());
  // Still held (the stop that ends the attempt drops it), and said once.
  EXPECT_EQ(r->held(), 1);
  ASSERT_EQ(r.lost().size(), 1u);
  EXPECT_EQ(r.lost()[0].code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.lost()[0].message()), HasSubstr("iteration 3"));
  EXPECT_TRUE(r.stops().empty());
}

TEST(ProgressReporterTest, EnqueueWaitsWhileTheWindowIsFullAndReleaseLetsItGo) {
  FakeCoordinator c;
  c.SetOthers(0);
  Reporter r(&c, Fast(/*max_held=*/4));
  for (int i = 1; i <= 4; ++i) r->Enqueue(Report(i));
  absl::Mutex mu;
  int64_t enqueued = 4;
  std::thread training([&] {
    for (int i = 5; i <= 6; ++i) {
      r->Enqueue(Report(i));
      absl::MutexLock lock(&mu);
      enqueued = i;
    }
  });
  ASSERT_TRUE(c.WaitDelivered(4));
  {
    // Held: 4 of 4; the fifth waits (no report is dropped to make room).
    absl::MutexLock lock(&mu);
    auto moved = [&] { return enqueued > 4; };
    EXPECT_FALSE(mu.AwaitWithTimeout(absl::Condition(&moved), absl::Milliseconds(100)));
  }
  EXPECT_EQ(r->held(), 4);
  c.SetOthers(1);  // one stored: room for one more
  ASSERT_TRUE(c.WaitDelivered(5));
  {
    absl::MutexLock lock(&mu);
    auto five = [&] { return enqueued == 5; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&five), absl::Seconds(10)));
  }
  EXPECT_LE(r->held(), 4);
  r->Release();  // the attempt is stopping: the training thread goes on
  training.join();
  c.SetOthers(100);
  ASSERT_TRUE(r->Flush(absl::Seconds(10)));
  EXPECT_EQ(c.recorded(), Range(1, 6));
}

TEST(ProgressReporterTest, StopAckAndPermanentRefusalEndDeliveryAndDropWhatIsHeld) {
  FakeCoordinator d;
  d.SetOthers(0);
  d.FailNext(absl::FailedPreconditionError("not assigned"));
  Reporter r(&d);
  r->Enqueue(Report(1));
  r->Enqueue(Report(2));
  ASSERT_TRUE(r->Flush(absl::Seconds(10)));
  ASSERT_EQ(r.stops().size(), 1u);
  EXPECT_THAT(r.stops()[0], HasSubstr("not assigned"));
  EXPECT_EQ(r->held(), 0);
  EXPECT_EQ(d.attempts(), (std::vector<int64_t>{1}));  // nothing more goes out
  r->Enqueue(Report(3));                               // nor later
  EXPECT_TRUE(r->Flush(absl::Seconds(10)));

  FakeCoordinator e;
  e.StopAt(2);
  Reporter r2(&e);
  r2->Enqueue(Report(1));
  r2->Enqueue(Report(2));
  ASSERT_TRUE(r2->Flush(absl::Seconds(10)));
  EXPECT_EQ(r2.stops().size(), 1u);
  EXPECT_EQ(e.recorded(), Range(1, 1));
}

TEST(FaultKindTest, EngineStatusCodesMapToWhatTheCoordinatorDoes) {
  EXPECT_EQ(FaultKindOf(absl::ResourceExhaustedError("oom")), v1::FAULT_OUT_OF_MEMORY);
  EXPECT_EQ(FaultKindOf(absl::DeadlineExceededError("recv")), v1::FAULT_TRANSPORT);
  EXPECT_EQ(FaultKindOf(absl::UnavailableError("peer")), v1::FAULT_TRANSPORT);
  EXPECT_EQ(FaultKindOf(absl::DataLossError("ckpt")), v1::FAULT_DATA);
  EXPECT_EQ(FaultKindOf(absl::NotFoundError("data file")), v1::FAULT_DATA);
  EXPECT_EQ(FaultKindOf(absl::InternalError("bug")), v1::FAULT_INTERNAL);
  // The corpus's own errors are input faults whatever their code.
  EXPECT_EQ(FaultKindOf(absl::InvalidArgumentError("short")), v1::FAULT_INTERNAL);
  EXPECT_EQ(FaultKindOf(AsInputFault(absl::InvalidArgumentError("short"))), v1::FAULT_INPUT);
  EXPECT_EQ(FaultKindOf(AsInputFault(absl::NotFoundError("no corpus"))), v1::FAULT_INPUT);
  EXPECT_TRUE(AsInputFault(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace chronos::worker

namespace chronos::worker {
namespace {

using ::chronos::testing::ConnectOnly;
using ::chronos::testing::HttpRequest;
using ::testing::HasSubstr;

// Slow and half-open clients cannot keep a scrape out: every connection is
// polled at once, each has a whole-request deadline, and past the limit the
// oldest make room.
TEST(MetricsHttpServerTest, ScrapesAreAnsweredWhileHostileClientsHoldConnections) {
  rpc::MetricsHttpServer server([] { return std::string("up 1\n"); });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  const int port = server.port();
  std::vector<int> held;
  for (int i = 0; i < 20; ++i) held.push_back(ConnectOnly(port));  // never send
  int slow = ConnectOnly(port);
  ASSERT_GE(slow, 0);
  ASSERT_EQ(send(slow, "G", 1, MSG_NOSIGNAL), 1);  // a request that never ends
  const absl::Time start = absl::Now();
  EXPECT_THAT(HttpRequest(port, "GET /metrics HTTP/1.1", /*timeout_seconds=*/3), HasSubstr("up 1"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // More connections than the server keeps: the oldest are closed for new ones.
  for (int i = 0; i < 2 * rpc::MetricsHttpServer::kMaxConnections; ++i) {
    held.push_back(ConnectOnly(port));
  }
  EXPECT_THAT(HttpRequest(port, "GET /metrics HTTP/1.1", /*timeout_seconds=*/3), HasSubstr("up 1"));
  // A client that trickles a request is cut off at its deadline (EOF), not
  // held for ever: a bounded wait on the server closing it.
  close(slow);
  slow = ConnectOnly(port);
  ASSERT_EQ(send(slow, "GET", 3, MSG_NOSIGNAL), 3);
  timeval tv{absl::ToInt64Seconds(rpc::MetricsHttpServer::kRequestDeadline) + 3, 0};
  setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char c;
  EXPECT_EQ(recv(slow, &c, 1, 0), 0) << "the server should close a request past its deadline";
  close(slow);
  for (int fd : held) {
    if (fd >= 0) close(fd);
  }
}

}  // namespace
}  // namespace chronos::worker
