// Focused executor and StageRunner behaviour: transport timeouts, stopping,
// live schedule updates, checkpoint/resume, exception mapping and schedule
// checks. Pipelines run as threads over Gloo (tests/worker/pipeline_harness);
// single-stage cases drive an Executor directly over a loopback transport.
#include "worker/executor.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/simulator.h"
#include "tests/worker/pipeline_harness.h"
#include "worker/checkpoint.h"
#include "worker/comm/loopback_communicator.h"
#include "worker/model/model_dims_from_spec.h"
#include "worker/stage_runner_impl.h"

namespace chronos::worker {
namespace {

using testing::TinyJob;

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(1); }

  static std::string TempDir(const std::string& name) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::filesystem::path p = std::filesystem::path(tmp != nullptr ? tmp : "/tmp") /
                              ("executor_test_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(p);
    return p.string();
  }
};

// Fault injection as a wrapper: a loopback transport that raises the stop
// flag when the stage posts its first send, i.e. in the middle of an
// iteration.
class StopOnSendCommunicator : public LoopbackCommunicator {
 public:
  StopOnSendCommunicator(std::atomic<bool>* stop, int rank, int size)
      : LoopbackCommunicator(rank, size), stop_(stop) {}
  std::unique_ptr<Work> Send(const at::Tensor& t, int peer, int tag) override {
    stop_->store(true);
    return LoopbackCommunicator::Send(t, peer, tag);
  }

 private:
  std::atomic<bool>* stop_;
};

// One device's stage built by hand around an Executor.
struct Stage {
  v1::JobSpec spec;
  Schedule schedule;
  ModelDims dims;
  MemoryLedger ledger;
  std::unique_ptr<ActivationStash> stash;
  std::vector<std::unique_ptr<Chunk>> chunks;
  std::unique_ptr<AdamW> adam;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<TokenSource> tokens;

  std::vector<Batch> Batches(int64_t it) const {
    std::vector<Batch> b;
    for (int mb = 0; mb < schedule.num_microbatches; ++mb) {
      b.push_back(tokens->Get(it, 0, 1, mb, schedule.num_microbatches, dims.micro_batch,
                              dims.seq_len, 1234));
    }
    return b;
  }
};

// Device `device` of a p-device 1f1b job with a mixed memory policy.
std::unique_ptr<Stage> MakeStage(int p, int device, std::unique_ptr<Communicator> comm) {
  auto st = std::make_unique<Stage>();
  TinyJob job;
  job.pipeline = p;
  job.layers = 2 * p;
  job.data_path = testing::AnyTextCorpus();
  std::vector<int> layers(p, 2);
  st->spec = testing::MakeSpec(job, "1f1b", 1, layers);
  auto s = testing::BuildSchedule(st->spec, "1f1b", 1, layers,
                                  testing::MixedPolicy(p, job.microbatches));
  EXPECT_TRUE(s.ok()) << s.status();
  st->schedule = *s;
  st->dims = ModelDimsFromSpec(st->spec, false);
  st->stash = std::make_unique<ActivationStash>(&st->ledger);
  std::vector<Chunk*> raw;
  std::vector<Param*> params;
  int first = 0;
  for (int c = 0; c < p; ++c) {
    if (c == device) {
      ChunkSpec cs{c, first, layers[c], c == 0, c == p - 1};
      st->chunks.push_back(std::make_unique<Chunk>(st->dims, cs, 1234, at::kFloat));
      raw.push_back(st->chunks.back().get());
      for (Param* prm : raw.back()->params()) params.push_back(prm);
    }
    first += layers[c];
  }
  st->adam = std::make_unique<AdamW>(params, AdamWOptions{});
  st->comm = std::move(comm);
  ExecutorOptions eo;
  eo.device = device;
  eo.dims = st->dims;
  eo.act_options = at::TensorOptions().dtype(at::kFloat);
  auto e = Executor::Create(eo, st->schedule, raw, st->stash.get(), &st->ledger, st->comm.get(),
                            st->adam.get());
  EXPECT_TRUE(e.ok()) << e.status();
  st->executor = std::move(*e);
  st->tokens = std::move(*TokenSource::Open(job.data_path, TokenFormat::kText, 256, job.seq_len));
  return st;
}

TEST_F(ExecutorTest, MissingPeerTimesOutWithDeadlineExceededNamingDeviceAndAction) {
  TinyJob job;
  job.data_path = testing::AnyTextCorpus();
  const std::vector<int> layers = {2, 2};
  testing::PipelineRun run;
  run.spec = testing::MakeSpec(job, "1f1b", 1, layers);
  auto s = testing::BuildSchedule(run.spec, "1f1b", 1, layers, {});
  ASSERT_TRUE(s.ok()) << s.status();
  run.schedule = *s;
  run.comm_timeout = absl::Milliseconds(300);
  run.idle_ranks = {0};  // device 0 joins the group but never computes
  const auto ranks = testing::RunPipeline(run);
  const absl::Status& st = ranks[1].status;
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  // Device 1's first action receives chunk 1's input; F is where it waits.
  Action f = Action::Compute(ActionType::kF, 1, 0);
  EXPECT_NE(st.message().find("device 1"), std::string::npos) << st;
  EXPECT_NE(st.message().find(ActionToString(f)), std::string::npos) << st;
  EXPECT_NE(st.message().find("RECV_ACT from device 0"), std::string::npos) << st;
  EXPECT_TRUE(ranks[1].reports.empty());
}

TEST_F(ExecutorTest, StopBeforeRunCancelsWithoutIterations) {
  TinyJob job;
  job.pipeline = 1;
  job.data_path = testing::AnyTextCorpus();
  StageRunnerOptions o;
  o.spec = testing::MakeSpec(job, "1f1b", 1, {4});
  auto s = testing::BuildSchedule(o.spec, "1f1b", 1, {4}, {});
  ASSERT_TRUE(s.ok()) << s.status();
  o.schedule = *s;
  o.threads = 1;
  auto runner = StageRunner::Create(o, std::make_unique<LoopbackCommunicator>());
  ASSERT_TRUE(runner.ok()) << runner.status();
  (*runner)->Stop();
  EXPECT_EQ((*runner)->Run(nullptr).code(), absl::StatusCode::kCancelled);
}

TEST_F(ExecutorTest, StopFromEveryStageEndsPipelineAtIterationBoundary) {
  TinyJob job;
  job.iterations = 5;
  job.data_path = testing::AnyTextCorpus();
  const std::vector<int> layers = {1, 1, 1, 1};
  testing::PipelineRun run;
  run.spec = testing::MakeSpec(job, "chronos", 2, layers);
  auto s = testing::BuildSchedule(run.spec, "chronos", 2, layers, {});
  ASSERT_TRUE(s.ok()) << s.status();
  run.schedule = *s;
  run.on_iteration = [](int, StageRunner& r, const v1::ProgressReport& rep) {
    if (rep.iteration() == 2) r.Stop();
    return absl::OkStatus();
  };
  for (const auto& r : testing::RunPipeline(run)) {
    EXPECT_EQ(r.status.code(), absl::StatusCode::kCancelled) << r.status;
    EXPECT_EQ(r.reports.size(), 2u);
  }
}

TEST_F(ExecutorTest, StopMidIterationCancelsAndNextIterationStartsClean) {
  std::atomic<bool> stop{false};
  auto st = MakeStage(2, 0, std::make_unique<StopOnSendCommunicator>(&stop, 0, 2));
  auto r = st->executor->RunIteration(1, st->Batches(1), &stop);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_NE(r.status().message().find("device 0"), std::string::npos);
  // Nothing of the abandoned iteration is left behind.
  EXPECT_EQ(st->stash->size(), 0u);
  EXPECT_EQ(st->ledger.Snapshot().resident_bytes, 0);
  EXPECT_EQ(st->ledger.Snapshot().offloaded_bytes, 0);

  // Without a stop the same executor completes an iteration.
  std::atomic<bool> never{false};
  auto ok = st->executor->RunIteration(1, st->Batches(1), &never);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->stepped);
  EXPECT_GT(ok->peak_resident_bytes, 0);
  EXPECT_EQ(ok->resident_bytes, 0);
}

TEST_F(ExecutorTest, LastStageOverLoopbackReportsLossAndTimings) {
  auto st = MakeStage(2, 1, std::make_unique<LoopbackCommunicator>(1, 2));
  auto r = st->executor->RunIteration(1, st->Batches(1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->has_loss);
  EXPECT_TRUE(std::isfinite(r->loss));
  EXPECT_GT(r->loss, 0);
  EXPECT_GT(r->grad_norm, 0);
  EXPECT_GT(r->compute_seconds, 0);
  EXPECT_GT(r->recompute_seconds, 0);  // the mixed policy recomputes
  EXPECT_GT(r->offloaded_total_bytes, 0);
  EXPECT_EQ(r->offloaded_total_bytes, r->reloaded_total_bytes);
  EXPECT_LE(r->compute_seconds, r->seconds);
}

TEST_F(ExecutorTest, LibTorchErrorsBecomeStatusesNamingDeviceAndAction) {
  auto st = MakeStage(2, 0, std::make_unique<LoopbackCommunicator>(0, 2));
  std::vector<Batch> bad = st->Batches(1);
  // A sequence longer than the model's: the first layer rejects its input.
  bad[0].inputs = at::zeros({2, 3}, at::kLong);
  auto r = st->executor->RunIteration(1, bad);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInternal) << r.status();
  const Action f = st->executor->actions()[0];
  EXPECT_NE(r.status().message().find("device 0"), std::string::npos);
  EXPECT_NE(r.status().message().find(ActionToString(f)), std::string::npos) << r.status();
  EXPECT_EQ(st->ledger.Snapshot().resident_bytes, 0);
}

TEST_F(ExecutorTest, ExceptionMappingSendsOutOfMemoryToResourceExhausted) {
  auto convert = [](auto thrower) {
    try {
      thrower();
    } catch (...) {
      return StatusFromCurrentException("ctx");
    }
    return absl::OkStatus();
  };
  EXPECT_EQ(convert([] { throw std::bad_alloc(); }).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(convert([] { TORCH_CHECK(false, "CUDA out of memory. Tried"); }).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(convert([] { TORCH_CHECK(false, "shape mismatch"); }).code(),
            absl::StatusCode::kInternal);
  // A real allocation failure: 512 TiB, beyond any address space, so it
  // fails even where the kernel overcommits.
  const absl::Status huge = convert([] { at::empty({int64_t{1} << 47}, at::kFloat); });
  EXPECT_EQ(huge.code(), absl::StatusCode::kResourceExhausted) << huge;
  EXPECT_EQ(huge.message().substr(0, 3), "ctx");
}

TEST_F(ExecutorTest, StageTooLargeForMemoryFailsCreateWithResourceExhausted) {
  TinyJob job;
  job.pipeline = 1;
  // The embedding alone is ~2^31 x 2^16 fp32 = 512 TiB: no machine maps it.
  job.vocab = (int64_t{1} << 31) - 1;
  job.hidden = 1 << 16;
  job.heads = 4;
  job.ffn = 1;
  job.layers = 1;
  job.data_path = testing::AnyTextCorpus();
  StageRunnerOptions o;
  o.spec = testing::MakeSpec(job, "1f1b", 1, {1});
  auto s = testing::BuildSchedule(o.spec, "1f1b", 1, {1}, {});
  ASSERT_TRUE(s.ok()) << s.status();
  o.schedule = *s;
  auto runner = StageRunner::Create(o, std::make_unique<LoopbackCommunicator>());
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kResourceExhausted) << runner.status();
}

TEST_F(ExecutorTest, SetScheduleRejectsAnotherPartition) {
  auto st = MakeStage(2, 0, std::make_unique<LoopbackCommunicator>(0, 2));
  Schedule other = st->schedule;
  other.chunk_layers = {1, 3};
  EXPECT_EQ(st->executor->SetSchedule(other).code(), absl::StatusCode::kInvalidArgument);
  Schedule fewer = st->schedule;
  fewer.num_microbatches = 2;
  EXPECT_EQ(st->executor->SetSchedule(fewer).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(st->executor->SetSchedule(st->schedule).ok());
}

TEST_F(ExecutorTest, UpdateScheduleSwitchesOffloadAtNextIteration) {
  TinyJob job;
  job.iterations = 4;
  job.data_path = testing::AnyTextCorpus();
  const std::vector<int> layers = {1, 2, 1, 1};
  const v1::JobSpec spec = testing::MakeSpec(job, "chronos", 2, layers);
  auto keep = testing::BuildSchedule(spec, "chronos", 2, layers, {});
  ASSERT_TRUE(keep.ok()) << keep.status();
  PolicyTable off(4, std::vector<MemoryPolicy>(job.microbatches, MemoryPolicy::Offload(0.5)));
  auto offload = testing::BuildSchedule(spec, "chronos", 2, layers, off);
  ASSERT_TRUE(offload.ok()) << offload.status();
  auto sim = Simulate(*offload, testing::CpuCostModel(spec, layers));
  ASSERT_TRUE(sim.ok()) << sim.status();

  testing::PipelineRun base;
  base.spec = spec;
  base.schedule = *keep;
  const std::vector<double> base_losses = testing::ReplicaMeanLosses(testing::RunPipeline(base));

  testing::PipelineRun run = base;
  const Schedule next = *offload;
  run.on_iteration = [&next](int, StageRunner& r, const v1::ProgressReport& rep) {
    if (rep.iteration() == 2) r.UpdateSchedule(next, 7, 0.5);
    return absl::OkStatus();
  };
  const auto ranks = testing::RunPipeline(run);
  for (const auto& r : ranks) {
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.reports.size(), 4u);
    for (const v1::ProgressReport& rep : r.reports) {
      SCOPED_TRACE(::testing::Message()
                   << "device " << r.device << " iteration " << rep.iteration());
      if (rep.iteration() <= 2) {
        EXPECT_EQ(rep.device().offload_copied_bytes(), 0);
        EXPECT_EQ(rep.device().peak_offloaded_bytes(), 0);
        EXPECT_EQ(rep.policy_generation(), 0);
      } else {
        EXPECT_GT(rep.device().offload_copied_bytes(), 0);
        EXPECT_EQ(rep.device().peak_offloaded_bytes(), sim->devices[r.device].peak_offloaded_bytes);
        EXPECT_EQ(rep.device().peak_activation_bytes(),
                  sim->devices[r.device].peak_activation_bytes);
        EXPECT_EQ(rep.policy_generation(), 7);
        EXPECT_EQ(rep.offload_ratio(), 0.5);
      }
    }
  }
  // Offloading moves bytes, not values: the losses are bit-identical.
  EXPECT_EQ(testing::ReplicaMeanLosses(ranks), base_losses);
}

TEST_F(ExecutorTest, ResumeFromCheckpointOnFreshRunnersReproducesLossesExactly) {
  TinyJob job;
  job.iterations = 6;
  job.data_path = testing::AnyTextCorpus();
  const std::vector<int> layers = {1, 1, 2, 1};
  v1::JobSpec spec = testing::MakeSpec(job, "chronos", 2, layers);
  spec.mutable_training()->set_checkpoint_every(3);
  const std::string dir = TempDir("resume");
  auto s =
      testing::BuildSchedule(spec, "chronos", 2, layers, testing::MixedPolicy(4, job.microbatches));
  ASSERT_TRUE(s.ok()) << s.status();

  testing::PipelineRun whole;
  whole.spec = spec;
  whole.schedule = *s;
  whole.checkpoint_dir = dir;
  const auto full = testing::RunPipeline(whole);
  for (const auto& r : full) ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(full[0].reports[2].checkpoint_iteration(), 3);
  EXPECT_EQ(full[0].reports[1].checkpoint_iteration(), 0);

  testing::PipelineRun resumed = whole;
  resumed.resume_iteration = 3;
  const auto rest = testing::RunPipeline(resumed);
  for (const auto& r : rest) ASSERT_TRUE(r.status.ok()) << r.status;

  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_EQ(rest[rank].reports.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      const v1::ProgressReport& a = full[rank].reports[3 + i];
      const v1::ProgressReport& b = rest[rank].reports[i];
      EXPECT_EQ(b.iteration(), a.iteration());
      EXPECT_EQ(b.has_loss(), a.has_loss());
      EXPECT_EQ(b.loss(), a.loss()) << "iteration " << a.iteration();
      EXPECT_EQ(b.grad_norm(), a.grad_norm()) << "iteration " << a.iteration();
    }
  }
  std::filesystem::remove_all(dir);
}

// Trains `job` uninterrupted on `layers` (one entry per chunk) with a
// checkpoint every 3 iterations under `dir`; the outcomes of every rank.
absl::StatusOr<std::vector<testing::RankOutcome>> TrainWithCheckpoints(
    const TinyJob& job, const std::string& kind, int chunks_per_device,
    const std::vector<int>& layers, const std::string& dir) {
  v1::JobSpec spec = testing::MakeSpec(job, kind, chunks_per_device, layers);
  spec.mutable_training()->set_checkpoint_every(3);
  absl::StatusOr<Schedule> s = testing::BuildSchedule(spec, kind, chunks_per_device, layers, {});
  if (!s.ok()) return s.status();
  testing::PipelineRun whole;
  whole.spec = spec;
  whole.schedule = *s;
  whole.checkpoint_dir = dir;
  std::vector<testing::RankOutcome> out = testing::RunPipeline(whole);
  for (const auto& r : out) {
    if (!r.status.ok()) return r.status;
  }
  return out;
}

// Runs `job` (at its own pipeline and data width) from the checkpoint of
// iteration 3 that a 2-stage run wrote under `dir`, to iteration 6.
std::vector<testing::RankOutcome> ResumeAtIteration3(
    const TinyJob& job, const std::string& kind, int chunks_per_device,
    const std::vector<int>& layers, const PolicyTable& policy, const std::string& dir,
    absl::Duration comm_timeout = absl::Seconds(30)) {
  testing::PipelineRun resumed;
  resumed.spec = testing::MakeSpec(job, kind, chunks_per_device, layers);
  auto s = testing::BuildSchedule(resumed.spec, kind, chunks_per_device, layers, policy);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return {};
  resumed.schedule = *s;
  resumed.checkpoint_dir = dir;
  resumed.resume_iteration = 3;
  resumed.checkpoint_num_devices = 2;
  resumed.max_iterations = 6;
  resumed.comm_timeout = comm_timeout;  // peers of a rank that failed give up
  return testing::RunPipeline(resumed);
}

// Every rank of `rest` succeeded and iterations 4-6 match `want`, the
// uninterrupted run; the new width changes only the order of floating-point
// sums, hence the tolerance.
void ExpectResumedLossesMatch(const std::vector<testing::RankOutcome>& rest,
                              const std::vector<double>& want) {
  ASSERT_FALSE(rest.empty());
  for (const auto& r : rest) ASSERT_TRUE(r.status.ok()) << r.status;
  const std::vector<double> got = testing::ReplicaMeanLosses(rest);
  ASSERT_EQ(got.size(), 6u);  // indexed by iteration; 1-3 did not run
  for (int i = 3; i < 6; ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-5 * std::abs(want[i])) << "iteration " << i + 1;
  }
}

// A job re-planned onto another pipeline width resumes from the old
// width's checkpoint: each new stage gathers its parameters and AdamW
// moments by name from the old stage files. The reference is the
// uninterrupted run at the old width; the new width changes only the order
// of floating-point sums, hence the tolerance.
TEST_F(ExecutorTest, ResumeAtAnotherPipelineWidthContinuesTheUninterruptedRun) {
  TinyJob job;
  job.iterations = 6;
  job.data_path = testing::AnyTextCorpus();
  const std::string dir = TempDir("rewidth");
  // Chronos on 2 stages, 5 layers.
  auto trained = TrainWithCheckpoints(job, "chronos", 2, {1, 1, 2, 1}, dir);
  ASSERT_TRUE(trained.ok()) << trained.status();
  const std::vector<testing::RankOutcome>& full = *trained;
  const std::vector<double> want = testing::ReplicaMeanLosses(full);
  ASSERT_EQ(want.size(), 6u);

  struct Width {
    std::string kind;
    int pipeline, chunks_per_device;
    std::vector<int> layers;
  };
  for (const Width& w : {Width{"1f1b", 1, 1, {5}}, Width{"1f1b", 3, 1, {2, 2, 1}},
                         Width{"chronos", 2, 2, {2, 1, 1, 1}}}) {
    SCOPED_TRACE(absl::StrCat(w.kind, " p=", w.pipeline, " layers ", w.layers[0], "..."));
    TinyJob narrow = job;
    narrow.pipeline = w.pipeline;
    const auto rest = ResumeAtIteration3(
        narrow, w.kind, w.chunks_per_device, w.layers,
        testing::MixedPolicy(w.pipeline * w.chunks_per_device, job.microbatches), dir);
    ExpectResumedLossesMatch(rest, want);
    if (HasFatalFailure()) return;
    // The step count came along: the learning rate of iteration 4 is the
    // uninterrupted run's, not the warm-up's first.
    EXPECT_DOUBLE_EQ(rest.back().reports[0].lr(), full.back().reports[3].lr());
  }
  std::filesystem::remove_all(dir);
}

TEST_F(ExecutorTest, ResumeAtAnotherWidthNamesTheMissingFileOrParameter) {
  TinyJob job;
  job.iterations = 3;
  job.data_path = testing::AnyTextCorpus();
  const std::string dir = TempDir("rewidth-bad");
  // 1F1B on 2 stages, 4 layers.
  auto trained = TrainWithCheckpoints(job, "1f1b", 1, {2, 2}, dir);
  ASSERT_TRUE(trained.ok()) << trained.status();

  auto resume_one_stage = [&](int layers) {
    TinyJob one = job;
    one.pipeline = 1;
    StageRunnerOptions o;
    o.spec = testing::MakeSpec(one, "1f1b", 1, {layers});
    auto os = testing::BuildSchedule(o.spec, "1f1b", 1, {layers}, {});
    EXPECT_TRUE(os.ok()) << os.status();
    o.schedule = *os;
    o.resume_iteration = 3;
    o.checkpoint_num_devices = 2;
    o.checkpoint_dir = dir;
    auto runner = StageRunner::Create(o, std::make_unique<LoopbackCommunicator>());
    EXPECT_TRUE(runner.ok()) << runner.status();
    return (*runner)->Run(nullptr);
  };
  // A deeper model than the one that wrote it: layer 4 is in no file.
  absl::Status deeper = resume_one_stage(5);
  EXPECT_EQ(deeper.code(), absl::StatusCode::kDataLoss) << deeper;
  EXPECT_THAT(std::string(deeper.message()), ::testing::HasSubstr("layers.4."));
  // One old stage file gone: the error names it.
  std::filesystem::remove(StageCheckpointPath(dir, 3, 1, 0));
  absl::Status gone = resume_one_stage(4);
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound) << gone;
  EXPECT_THAT(std::string(gone.message()), ::testing::HasSubstr("stage-1-dp0"));
  std::filesystem::remove_all(dir);
}

// Six iterations of 1F1B on 2 stages x 2 replicas, 4 layers.
TinyJob TwoStagesTwoReplicas() {
  TinyJob job;
  job.iterations = 6;
  job.data = 2;
  job.data_path = testing::AnyTextCorpus();
  return job;
}

// The 4 layers of TwoStagesTwoReplicas() on 2 stages or 1.
std::vector<int> FourLayersOn(int pipeline) {
  return pipeline == 2 ? std::vector<int>{2, 2} : std::vector<int>{4};
}

// Trains `job` uninterrupted with checkpoints under `dir`; the replica-mean
// loss of each of its 6 iterations.
absl::StatusOr<std::vector<double>> TrainTwoStagesTwoReplicas(const TinyJob& job,
                                                              const std::string& dir) {
  auto trained = TrainWithCheckpoints(job, "1f1b", 1, FourLayersOn(2), dir);
  if (!trained.ok()) return trained.status();
  std::vector<double> losses = testing::ReplicaMeanLosses(*trained);
  if (losses.size() != 6u) {
    return absl::InternalError(absl::StrCat(losses.size(), " iterations trained, not 6"));
  }
  return losses;
}

// Data-parallel replicas hold the same parameters and optimizer state, so a
// replica whose own checkpoint files are gone restores from replica 0's, at
// the same pipeline width and at a narrower one, and the run continues as
// the uninterrupted one did. Without replica 0's files it fails naming them.
TEST_F(ExecutorTest, AReplicaWhoseFilesAreGoneRestoresFromReplicaZero) {
  const TinyJob job = TwoStagesTwoReplicas();
  const std::string dir = TempDir("replica-gone");
  auto want = TrainTwoStagesTwoReplicas(job, dir);
  ASSERT_TRUE(want.ok()) << want.status();
  for (int device = 0; device < 2; ++device) {
    ASSERT_TRUE(std::filesystem::remove(StageCheckpointPath(dir, 3, device, 1)));
  }

  auto resume = [&](int pipeline, absl::Duration comm_timeout = absl::Seconds(30)) {
    TinyJob at = job;
    at.pipeline = pipeline;
    return ResumeAtIteration3(at, "1f1b", 1, FourLayersOn(pipeline), {}, dir, comm_timeout);
  };
  for (int pipeline : {2, 1}) {
    SCOPED_TRACE(absl::StrCat("resumed on ", pipeline, " stages x 2 replicas"));
    ExpectResumedLossesMatch(resume(pipeline), *want);
  }

  ASSERT_TRUE(std::filesystem::remove(StageCheckpointPath(dir, 3, 1, 0)));
  bool named = false;
  for (const auto& r : resume(2, absl::Milliseconds(500))) {
    if (r.status.ok() || r.device != 1) continue;
    EXPECT_EQ(r.status.code(), absl::StatusCode::kNotFound) << r.status;
    named = named || absl::StrContains(r.status.message(), "stage-1-dp0");
  }
  EXPECT_TRUE(named) << "no rank named the missing file stage-1-dp0";
  std::filesystem::remove_all(dir);
}

// A job recovered onto fewer data-parallel replicas keeps its global batch:
// each remaining replica runs d / d' times the micro-batches, and sample k
// of an iteration is the same window whichever replica runs it, so the
// resumed run continues the uninterrupted one (up to the order of sums).
TEST_F(ExecutorTest, ResumeOnFewerReplicasWithMoreMicroBatchesContinuesTheRun) {
  const TinyJob job = TwoStagesTwoReplicas();
  const std::string dir = TempDir("fewer-replicas");
  auto want = TrainTwoStagesTwoReplicas(job, dir);
  ASSERT_TRUE(want.ok()) << want.status();
  for (int pipeline : {2, 1}) {
    SCOPED_TRACE(absl::StrCat("resumed on ", pipeline, " stages x 1 replica"));
    TinyJob one = job;
    one.pipeline = pipeline;
    one.data = 1;
    one.microbatches = job.microbatches * job.data;
    ExpectResumedLossesMatch(ResumeAtIteration3(one, "1f1b", 1, FourLayersOn(pipeline), {}, dir),
                             *want);
  }
  std::filesystem::remove_all(dir);
}

TEST_F(ExecutorTest, ResumeFromMissingCheckpointFailsWithoutRunning) {
  TinyJob job;
  job.pipeline = 1;
  job.data_path = testing::AnyTextCorpus();
  StageRunnerOptions o;
  o.spec = testing::MakeSpec(job, "1f1b", 1, {4});
  auto s = testing::BuildSchedule(o.spec, "1f1b", 1, {4}, {});
  ASSERT_TRUE(s.ok()) << s.status();
  o.schedule = *s;
  o.resume_iteration = 3;
  o.checkpoint_dir = TempDir("missing");
  auto runner = StageRunner::Create(o, std::make_unique<LoopbackCommunicator>());
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->Run(nullptr).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace chronos::worker
