#include "tests/worker/pipeline_harness.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <utility>

#include "core/device_profile.h"
#include "core/generate.h"
#include "core/job_spec_validation.h"
#include "core/status_macros.h"
#include "core/validator.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/in_memory_kv_store.h"
#include "worker/comm/kv_c10d_store.h"
#include "worker/stage_runner_impl.h"

namespace chronos::worker::testing {
namespace {

// Lends a communicator the harness owns to a runner, so the harness can
// still meet the other ranks in a barrier after the runner is done.
// A rank's view of the Gloo communicator the harness owns (which outlives
// the runner for the final barrier). CPU tensors pass through; device
// tensors are staged through host memory, since Gloo moves host memory, so
// the same harness runs stages on a GPU (tests/gpu/).
class BridgeCommunicator : public Communicator {
 public:
  explicit BridgeCommunicator(Communicator* c) : c_(c) {}
  int world_rank() const override { return c_->world_rank(); }
  int world_size() const override { return c_->world_size(); }
  std::unique_ptr<Work> Send(const at::Tensor& t, int peer, int tag) override {
    if (t.is_cpu()) return c_->Send(t, peer, tag);
    return c_->Send(t.to(at::kCPU), peer, tag);  // waits for the producer
  }
  std::unique_ptr<Work> Recv(at::Tensor& t, int peer, int tag) override {
    if (t.is_cpu()) return c_->Recv(t, peer, tag);
    at::Tensor host = at::empty(t.sizes(), t.options().device(at::kCPU));
    std::unique_ptr<Work> w = c_->Recv(host, peer, tag);
    return std::make_unique<StagedRecv>(std::move(w), host, t);
  }
  absl::Status AllReduceSum(std::vector<at::Tensor>& tensors, Group group) override {
    bool all_cpu = true;
    for (const at::Tensor& t : tensors) all_cpu &= t.is_cpu();
    if (all_cpu) return c_->AllReduceSum(tensors, group);
    std::vector<at::Tensor> host;
    for (const at::Tensor& t : tensors) host.push_back(t.to(at::kCPU));
    absl::Status s = c_->AllReduceSum(host, group);
    if (!s.ok()) return s;
    for (size_t i = 0; i < tensors.size(); ++i) tensors[i].copy_(host[i]);
    return absl::OkStatus();
  }
  absl::Status Barrier(Group group) override { return c_->Barrier(group); }
  void Abort() override { c_->Abort(); }

 private:
  // Lands a host-staged receive in its device buffer when waited for.
  class StagedRecv : public Work {
   public:
    StagedRecv(std::unique_ptr<Work> w, at::Tensor host, at::Tensor device)
        : w_(std::move(w)), host_(std::move(host)), device_(std::move(device)) {}
    bool IsCompleted() override { return w_->IsCompleted(); }
    absl::Status Wait(absl::Duration timeout) override {
      absl::Status s = w_->Wait(timeout);
      if (s.ok() && host_.defined()) {
        device_.copy_(host_);
        host_ = at::Tensor();
      }
      return s;
    }

   private:
    std::unique_ptr<Work> w_;
    at::Tensor host_, device_;
  };

  Communicator* c_;
};

class CollectingSink : public ProgressSink {
 public:
  CollectingSink(int rank, const PipelineRun& run, RankOutcome* out)
      : rank_(rank), run_(run), out_(out) {}
  void set_runner(StageRunner* r) { runner_ = r; }
  absl::Status OnIteration(const v1::ProgressReport& report) override {
    out_->reports.push_back(report);
    if (run_.on_iteration) return run_.on_iteration(rank_, *runner_, report);
    return absl::OkStatus();
  }

 private:
  int rank_;
  const PipelineRun& run_;
  RankOutcome* out_;
  StageRunner* runner_ = nullptr;
};

}  // namespace

v1::JobSpec MakeSpec(const TinyJob& job, const std::string& kind, int chunks_per_device,
                     const std::vector<int>& layers) {
  v1::JobSpec spec;
  spec.set_name("executor-test");
  v1::ModelSpec* m = spec.mutable_model();
  int total = 0;
  for (int l : layers) total += l;
  m->set_layers(layers.empty() ? job.layers : total);
  m->set_hidden(job.hidden);
  m->set_heads(job.heads);
  m->set_ffn_hidden(job.ffn);
  m->set_vocab(job.vocab);
  m->set_seq_len(job.seq_len);
  m->set_attention(v1::ATTENTION_STANDARD);
  spec.mutable_data()->set_path(job.data_path);
  spec.mutable_data()->set_format(v1::DATA_FORMAT_TEXT);
  v1::TrainingSpec* t = spec.mutable_training();
  t->set_iterations(job.iterations);
  t->set_micro_batch_size(job.micro_batch);
  t->set_microbatches(job.microbatches);
  t->set_lr(job.lr);
  t->set_min_lr(job.min_lr);
  t->set_warmup_iterations(job.warmup);
  t->set_weight_decay(job.weight_decay);
  t->set_grad_clip(job.grad_clip);
  t->set_seed(job.seed);
  t->set_precision(v1::PRECISION_FP32);
  v1::ParallelSpec* p = spec.mutable_parallel();
  p->set_pipeline(job.pipeline);
  p->set_data(job.data);
  p->set_chunks_per_device(chunks_per_device);
  for (int l : layers) p->add_layers_per_chunk(l);
  spec.mutable_schedule()->set_kind(kind);
  spec.mutable_device()->set_profile("cpu");
  ApplyJobSpecDefaults(&spec);
  return spec;
}

CostModel CpuCostModel(const v1::JobSpec& spec, const std::vector<int>& layers) {
  v1::DeviceProfile cpu = *BuiltinDeviceProfile("cpu");
  return CostModel(ModelShapeFromSpec(spec, cpu), cpu, layers);
}

absl::StatusOr<Schedule> BuildSchedule(const v1::JobSpec& spec, const std::string& kind,
                                       int chunks_per_device, const std::vector<int>& layers,
                                       const PolicyTable& policy, const BlockTuning& tuning,
                                       const OrderSearchOptions& search) {
  CostModel costs = CpuCostModel(spec, layers);
  ShapeSpec shape = ScheduleShape(kind, spec.parallel().pipeline(), chunks_per_device,
                                  spec.training().microbatches(), costs);
  shape.block = tuning;
  shape.search = search;
  CHRONOS_ASSIGN_OR_RETURN(Schedule s, GenerateSchedule(shape));
  MemoryPassOptions mo;
  mo.data_parallel = spec.parallel().data();
  const PolicyTable table = policy.empty() ? UniformPolicy(s, MemoryPolicy::Keep()) : policy;
  CHRONOS_RETURN_IF_ERROR(ApplyMemoryPolicy(&s, table, costs, mo));
  CHRONOS_RETURN_IF_ERROR(ValidateSchedule(s));
  return s;
}

PolicyTable MixedPolicy(int num_chunks, int microbatches) {
  const MemoryPolicy kinds[] = {
      MemoryPolicy::Recompute(Granularity::kLayer),     MemoryPolicy::Offload(0.5),
      MemoryPolicy::Recompute(Granularity::kSelective), MemoryPolicy::Keep(),
      MemoryPolicy::Recompute(Granularity::kChunk),     MemoryPolicy::Offload(1.0),
  };
  PolicyTable t(num_chunks, std::vector<MemoryPolicy>(microbatches));
  for (int c = 0; c < num_chunks; ++c) {
    for (int mb = 0; mb < microbatches; ++mb) {
      t[c][mb] = kinds[(c * 5 + mb) % 6];
    }
  }
  return t;
}

std::string ShakespearePath() {
  const std::string p = "../shared/data/tinyshakespeare.txt";
  return std::filesystem::exists(p) ? p : "";
}

std::string AnyTextCorpus() {
  std::string p = ShakespearePath();
  if (!p.empty()) return p;
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/executor_test_corpus.txt";
  std::ofstream out(path);
  for (int i = 0; i < 2000; ++i) {
    out << "To be, or not to be, that is the question " << i << ".\n";
  }
  return path;
}

std::vector<RankOutcome> RunPipeline(const PipelineRun& run) {
  const int p = run.schedule.num_devices;
  const int d = std::max(1, run.spec.parallel().data());
  const int n = p * d;
  auto kv = std::make_shared<InMemoryKeyValueStore>();
  c10::intrusive_ptr<c10d::Store> store = NewKvC10dStore(kv, absl::Seconds(60));
  std::vector<RankOutcome> out(n);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < n; ++rank) {
    threads.emplace_back([&, rank] {
      RankOutcome& o = out[rank];
      o.device = rank % p;
      o.data_rank = rank / p;
      GlooCommunicatorOptions co;
      co.world_rank = rank;
      co.pipeline = p;
      co.data_parallel = d;
      co.key_prefix = "harness";
      co.timeout = absl::Seconds(120);
      auto comm = CreateGlooCommunicator(store, co);
      if (!comm.ok()) {
        o.status = comm.status();
        return;
      }
      if (run.idle_ranks.count(rank) == 0) {
        StageRunnerOptions so;
        so.spec = run.spec;
        so.schedule = run.schedule;
        so.device = o.device;
        so.data_rank = o.data_rank;
        so.resume_iteration = run.resume_iteration;
        so.checkpoint_num_devices = run.checkpoint_num_devices;
        so.checkpoint_dir = run.checkpoint_dir;
        so.threads = 1;
        so.max_iterations = run.max_iterations;
        so.device_name = run.device_name;
        StageRunnerExtras extras;
        extras.comm_timeout = run.comm_timeout;
        if (run.make_copier) extras.host_copier = run.make_copier();
        absl::Status runtime_status;
        if (run.make_runtime) {
          absl::StatusOr<std::shared_ptr<DeviceRuntime>> rt = run.make_runtime();
          if (rt.ok()) {
            extras.device_runtime = *rt;
          } else {
            runtime_status = rt.status();
          }
        }
        if (run.capture_first_grads) {
          extras.before_optim_step = [&o](int64_t it, const std::vector<Param*>& params) {
            if (it != 1) return;
            for (Param* prm : params) o.first_grads[prm->name] = prm->grad.clone();
          };
        }
        auto runner = runtime_status.ok()
                          ? CreateStageRunner(std::move(so),
                                              std::make_unique<BridgeCommunicator>(comm->get()),
                                              std::move(extras))
                          : absl::StatusOr<std::unique_ptr<StageRunner>>(runtime_status);
        if (!runner.ok()) {
          o.status = runner.status();
        } else {
          CollectingSink sink(rank, run, &o);
          sink.set_runner(runner->get());
          o.ran = true;
          o.status = (*runner)->Run(&sink);
        }
      }
      // Nobody tears its groups down while a peer may still use them.
      absl::Status b = (*comm)->Barrier(Group::kWorld);
      EXPECT_TRUE(b.ok()) << "rank " << rank << ": " << b;
    });
  }
  for (std::thread& t : threads) t.join();
  return out;
}

std::vector<double> ReplicaMeanLosses(const std::vector<RankOutcome>& ranks) {
  std::vector<double> sum;
  std::vector<int> count;
  for (const RankOutcome& r : ranks) {
    for (const v1::ProgressReport& rep : r.reports) {
      if (!rep.has_loss()) continue;
      const size_t i = static_cast<size_t>(rep.iteration() - 1);
      if (sum.size() <= i) {
        sum.resize(i + 1, 0.0);
        count.resize(i + 1, 0);
      }
      sum[i] += rep.loss();
      count[i]++;
    }
  }
  for (size_t i = 0; i < sum.size(); ++i) {
    if (count[i] > 0) sum[i] /= count[i];
  }
  return sum;
}

}  // namespace chronos::worker::testing
