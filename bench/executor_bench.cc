// chronos-bench-executor: what the executor costs on top of the compute it
// schedules, and (with --train) a full pipeline training run.
//
// Overhead mode (default), per model shape:
//   p1        one device, whole model: Executor over a loopback transport vs
//             a bare loop of Chunk::Forward/Backward + the same AdamW step.
//   p2-stageD one stage of a 2-device 1F1B pipeline emulated on its own
//             (receives complete at once with fixed data): Executor vs the
//             same chunks' Forward/Backward in a plain loop.
//   p2-gloo   the whole 2-device pipeline on two threads over Gloo vs the
//             two stages' bare loops on two threads: the difference also
//             holds the schedule's bubble, which is not executor overhead.
// overhead % = (executor - bare) / bare, medians over the measured
// iterations, executor and bare iterations interleaved to share drift.
//
// Train mode: p stages as threads over Gloo, StageRunner end to end on a
// text corpus, the loss every --every iterations.
//
// Output: a table, then one JSON object on the last line.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/device_profile.h"
#include "core/generate.h"
#include "core/job_spec_validation.h"
#include "core/memory_passes.h"
#include "worker/comm/done_work.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/in_memory_kv_store.h"
#include "worker/comm/kv_c10d_store.h"
#include "worker/comm/loopback_communicator.h"
#include "worker/data/token_source.h"
#include "worker/executor.h"
#include "worker/model/model_dims_from_spec.h"
#include "worker/stage_runner_impl.h"

namespace chronos::worker {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct ModelConfig {
  std::string name;
  int layers = 4, hidden = 128, heads = 4, ffn = 344, seq = 64;
  int b = 8, m = 8;
};

v1::JobSpec MakeSpec(const ModelConfig& c, const std::string& data, int p,
                     const std::string& kind, int v,
                     const std::vector<int>& layers) {
  v1::JobSpec spec;
  auto* m = spec.mutable_model();
  m->set_layers(c.layers);
  m->set_hidden(c.hidden);
  m->set_heads(c.heads);
  m->set_ffn_hidden(c.ffn);
  m->set_vocab(256);
  m->set_seq_len(c.seq);
  m->set_attention(v1::ATTENTION_STANDARD);
  spec.mutable_data()->set_path(data);
  spec.mutable_data()->set_format(v1::DATA_FORMAT_TEXT);
  auto* t = spec.mutable_training();
  t->set_iterations(1000);
  t->set_micro_batch_size(c.b);
  t->set_microbatches(c.m);
  t->set_lr(1e-3);
  t->set_seed(1);
  t->set_precision(v1::PRECISION_FP32);
  spec.mutable_parallel()->set_pipeline(p);
  spec.mutable_parallel()->set_chunks_per_device(v);
  for (int l : layers) spec.mutable_parallel()->add_layers_per_chunk(l);
  spec.mutable_schedule()->set_kind(kind);
  spec.mutable_device()->set_profile("cpu");
  ApplyJobSpecDefaults(&spec);
  return spec;
}

std::vector<int> EvenLayers(int layers, int chunks) {
  std::vector<int> out(chunks, layers / chunks);
  for (int i = 0; i < layers % chunks; ++i) out[i]++;
  return out;
}

Schedule BuildSchedule(const v1::JobSpec& spec, const std::string& kind,
                       int v, const std::vector<int>& layers) {
  const v1::DeviceProfile cpu = *BuiltinDeviceProfile("cpu");
  CostModel costs(ModelShapeFromSpec(spec, cpu), cpu, layers);
  ShapeSpec shape;
  shape.kind = kind;
  shape.num_devices = spec.parallel().pipeline();
  shape.chunks_per_device = v;
  shape.num_microbatches = spec.training().microbatches();
  shape.chunk_layers = layers;
  shape.costs.forward = costs.ForwardSeconds();
  shape.costs.backward_input = costs.BackwardInputSeconds();
  shape.costs.backward_weight = costs.BackwardWeightSeconds();
  auto s = GenerateSchedule(shape);
  CHECK(s.ok()) << s.status();
  CHECK(ApplyMemoryPolicy(&*s, UniformPolicy(*s, MemoryPolicy::Keep()), costs)
            .ok());
  return *s;
}

// Emulates the rest of the pipeline: each receive buffer gets loopback's
// random values once (buffers persist across iterations), after that
// receives complete at once, so the measured time is this stage's alone.
class QuietPeers : public LoopbackCommunicator {
 public:
  using LoopbackCommunicator::LoopbackCommunicator;
  std::unique_ptr<Work> Recv(at::Tensor& t, int peer, int tag) override {
    if (filled_.insert(tag).second) {
      return LoopbackCommunicator::Recv(t, peer, tag);
    }
    return std::make_unique<DoneWork>();
  }

 private:
  std::set<int> filled_;
};

// One device's model state plus everything both the executor and the bare
// loop need.
struct Stage {
  ModelDims dims;
  std::vector<std::unique_ptr<Chunk>> chunks;
  std::unique_ptr<AdamW> adam;
  MemoryLedger ledger;
  std::unique_ptr<ActivationStash> stash;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<Executor> executor;
  std::vector<Batch> batches;
  at::Tensor fake_act, fake_grad;  // what the bare loop feeds remote edges
  int num_chunks = 0;
  int m = 0;
  double loss_scale = 0;

  Stage(const v1::JobSpec& spec, const Schedule& s, int device,
        std::unique_ptr<Communicator> c, const TokenSource& tokens) {
    dims = ModelDimsFromSpec(spec, false);
    num_chunks = s.num_chunks();
    m = s.num_microbatches;
    std::vector<Chunk*> raw;
    std::vector<Param*> params;
    int first = 0;
    for (int ch = 0; ch < num_chunks; ++ch) {
      if (s.chunk_device[ch] == device) {
        ChunkSpec cs{ch, first, s.chunk_layers[ch], ch == 0,
                     ch == num_chunks - 1};
        chunks.push_back(std::make_unique<Chunk>(dims, cs, 1, at::kFloat));
        raw.push_back(chunks.back().get());
        for (Param* p : raw.back()->params()) params.push_back(p);
      }
      first += s.chunk_layers[ch];
    }
    adam = std::make_unique<AdamW>(params, AdamWOptions{});
    stash = std::make_unique<ActivationStash>(&ledger);
    comm = std::move(c);
    ExecutorOptions eo;
    eo.device = device;
    eo.dims = dims;
    eo.act_options = at::TensorOptions().dtype(at::kFloat);
    auto e = Executor::Create(eo, s, raw, stash.get(), &ledger, comm.get(),
                              adam.get());
    CHECK(e.ok()) << e.status();
    executor = std::move(*e);
    for (int mb = 0; mb < m; ++mb) {
      batches.push_back(
          tokens.Get(1, 0, 1, mb, m, dims.micro_batch, dims.seq_len, 1));
    }
    fake_act = at::randn({dims.micro_batch, dims.seq_len, dims.hidden});
    fake_grad = at::randn({dims.micro_batch, dims.seq_len, dims.hidden}) * 1e-3;
    loss_scale = 1.0 / (dims.micro_batch * dims.seq_len * m);
  }

  double RunExecutor(int64_t it) {
    auto r = executor->RunIteration(it, batches);
    CHECK(r.ok()) << r.status();
    return r->seconds;
  }

  // The same chunks' compute, no schedule and no transport: per micro-batch
  // F through the local chunks, then B back, then the optimizer step.
  double RunBare() {
    const auto t0 = Clock::now();
    for (int mb = 0; mb < m; ++mb) {
      at::Tensor h;
      int prev = -2;
      for (auto& c : chunks) {
        const ChunkSpec& cs = c->spec();
        at::Tensor in = cs.has_embedding ? batches[mb].inputs
                        : (prev == cs.index - 1) ? h
                                                 : fake_act;
        h = c->Forward(mb, in,
                       cs.has_head ? batches[mb].targets : at::Tensor(),
                       SaveMode::kAll, stash.get());
        prev = cs.index;
      }
      at::Tensor g;
      int next = -2;
      for (auto it = chunks.rbegin(); it != chunks.rend(); ++it) {
        const ChunkSpec& cs = (*it)->spec();
        at::Tensor go = cs.has_head ? at::Tensor()
                        : (next == cs.index + 1) ? g
                                                 : fake_grad;
        g = (*it)->Backward(mb, go, loss_scale, stash.get());
        next = cs.index;
      }
    }
    adam->Step(1, std::sqrt(adam->LocalGradSquaredNorm()));
    return Since(t0);
  }
};

struct Row {
  std::string shape, mode;
  double executor = 0, bare = 0;
  double overhead() const { return (executor - bare) / bare; }
};

// Executor and bare iterations alternate; medians of `iters` each.
Row Measure(const std::string& shape, const std::string& mode, Stage& st,
            int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) {
    st.RunExecutor(1);
    st.RunBare();
  }
  std::vector<double> ex, bare;
  for (int i = 0; i < iters; ++i) {
    ex.push_back(st.RunExecutor(1));
    bare.push_back(st.RunBare());
  }
  return Row{shape, mode, Median(ex), Median(bare)};
}

// The whole p-device pipeline on threads over Gloo vs each stage's bare
// loop on the same threads.
Row MeasureGloo(const std::string& shape, const v1::JobSpec& spec,
                const Schedule& s, const TokenSource& tokens, int warmup,
                int iters) {
  const int p = s.num_devices;
  auto kv = std::make_shared<InMemoryKeyValueStore>();
  auto store = NewKvC10dStore(kv, absl::Seconds(60));
  std::vector<std::vector<double>> ex(p), bare(p);
  std::vector<std::thread> threads;
  for (int d = 0; d < p; ++d) {
    threads.emplace_back([&, d] {
      at::set_num_threads(1);
      GlooCommunicatorOptions o;
      o.world_rank = d;
      o.pipeline = p;
      o.key_prefix = "bench";
      auto comm = GlooCommunicator::Create(store, o);
      CHECK(comm.ok()) << comm.status();
      Communicator* raw = comm->get();
      Stage st(spec, s, d, std::move(*comm), tokens);
      for (int i = 0; i < warmup + iters; ++i) {
        CHECK(raw->Barrier(Group::kWorld).ok());
        const double e = st.RunExecutor(1);
        CHECK(raw->Barrier(Group::kWorld).ok());
        const double b = st.RunBare();
        if (i >= warmup) {
          ex[d].push_back(e);
          bare[d].push_back(b);
        }
      }
      CHECK(raw->Barrier(Group::kWorld).ok());
    });
  }
  for (auto& t : threads) t.join();
  // Per iteration the pipeline takes as long as its slowest stage.
  std::vector<double> e(iters, 0), b(iters, 0);
  for (int i = 0; i < iters; ++i) {
    for (int d = 0; d < p; ++d) {
      e[i] = std::max(e[i], ex[d][i]);
      b[i] = std::max(b[i], bare[d][i]);
    }
  }
  return Row{shape, absl::StrCat("p", p, "-gloo"), Median(e), Median(b)};
}

int Overhead(const std::string& data, int warmup, int iters, int threads) {
  auto tokens = TokenSource::Open(data, TokenFormat::kText, 256, 0);
  CHECK(tokens.ok()) << tokens.status();
  std::vector<ModelConfig> shapes = {
      {"small", 4, 128, 4, 344, 64, 8, 8},
      {"medium", 8, 256, 8, 688, 128, 8, 8},
  };
  std::vector<Row> rows;
  for (const ModelConfig& c : shapes) {
    at::set_num_threads(threads);
    {
      const std::vector<int> layers = {c.layers};
      const v1::JobSpec spec = MakeSpec(c, data, 1, "1f1b", 1, layers);
      const Schedule s = BuildSchedule(spec, "1f1b", 1, layers);
      Stage st(spec, s, 0, std::make_unique<LoopbackCommunicator>(0, 1),
               **tokens);
      rows.push_back(Measure(c.name, "p1", st, warmup, iters));
    }
    const std::vector<int> layers = EvenLayers(c.layers, 2);
    const v1::JobSpec spec = MakeSpec(c, data, 2, "1f1b", 1, layers);
    const Schedule s = BuildSchedule(spec, "1f1b", 1, layers);
    for (int d = 0; d < 2; ++d) {
      Stage st(spec, s, d, std::make_unique<QuietPeers>(d, 2), **tokens);
      rows.push_back(
          Measure(c.name, absl::StrCat("p2-stage", d), st, warmup, iters));
    }
    rows.push_back(MeasureGloo(c.name, spec, s, **tokens, warmup, iters));
  }
  std::printf("%-8s %-10s %12s %12s %10s\n", "shape", "mode", "executor_ms",
              "bare_ms", "overhead");
  std::string json = "{\"overhead\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::printf("%-8s %-10s %12.2f %12.2f %9.2f%%\n", r.shape.c_str(),
                r.mode.c_str(), r.executor * 1e3, r.bare * 1e3,
                100 * r.overhead());
    absl::StrAppend(&json, i ? ", " : "",
                    absl::StrFormat("{\"shape\": \"%s\", \"mode\": \"%s\", "
                                    "\"executor_seconds\": %.6f, "
                                    "\"bare_seconds\": %.6f, "
                                    "\"overhead\": %.4f}",
                                    r.shape, r.mode, r.executor, r.bare,
                                    r.overhead()));
  }
  json += "]}";
  std::printf("%s\n", json.c_str());
  return 0;
}

class PrintingSink : public ProgressSink {
 public:
  PrintingSink(int every, std::vector<std::pair<int64_t, double>>* curve)
      : every_(every), curve_(curve), start_(Clock::now()) {}
  absl::Status OnIteration(const IterationReport& r) override {
    if (!r.has_loss) return absl::OkStatus();
    if (r.iteration == 1 || r.iteration % every_ == 0) {
      curve_->push_back({r.iteration, r.loss});
      std::printf("%8lld %10.4f %10.2f %10.1f\n",
                  static_cast<long long>(r.iteration), r.loss, Since(start_),
                  r.tokens / r.seconds);
      std::fflush(stdout);
    }
    return absl::OkStatus();
  }

 private:
  int every_;
  std::vector<std::pair<int64_t, double>>* curve_;
  Clock::time_point start_;
};

struct TrainFlags {
  ModelConfig model;
  int p = 4, v = 2, iterations = 300, warmup = 20, every = 25;
  double lr = 3e-3, min_lr = 3e-4, weight_decay = 0.1, grad_clip = 1.0;
  std::string kind = "chronos";
};

int Train(const std::string& data, const TrainFlags& f) {
  const int C = f.p * f.v;
  const std::vector<int> layers = EvenLayers(f.model.layers, C);
  v1::JobSpec spec = MakeSpec(f.model, data, f.p, f.kind, f.v, layers);
  auto* t = spec.mutable_training();
  t->set_iterations(f.iterations);
  t->set_lr(f.lr);
  t->set_min_lr(f.min_lr);
  t->set_warmup_iterations(f.warmup);
  t->set_weight_decay(f.weight_decay);
  t->set_grad_clip(f.grad_clip);
  t->set_seed(1234);
  const Schedule s = BuildSchedule(spec, f.kind, f.v, layers);
  auto kv = std::make_shared<InMemoryKeyValueStore>();
  auto store = NewKvC10dStore(kv, absl::Seconds(60));
  std::vector<std::pair<int64_t, double>> curve;
  std::printf("%8s %10s %10s %10s\n", "iter", "loss", "elapsed_s", "tok/s");
  const auto t0 = Clock::now();
  std::vector<absl::Status> status(f.p);
  std::vector<std::thread> threads;
  for (int d = 0; d < f.p; ++d) {
    threads.emplace_back([&, d] {
      GlooCommunicatorOptions o;
      o.world_rank = d;
      o.pipeline = f.p;
      o.key_prefix = "train";
      auto comm = GlooCommunicator::Create(store, o);
      CHECK(comm.ok()) << comm.status();
      StageRunnerOptions so;
      so.spec = spec;
      so.schedule = s;
      so.device = d;
      so.threads = 1;
      auto runner = StageRunner::Create(so, std::move(*comm));
      CHECK(runner.ok()) << runner.status();
      PrintingSink sink(f.every, &curve);
      status[d] = (*runner)->Run(&sink);
    });
  }
  for (auto& th : threads) th.join();
  const double total = Since(t0);
  for (int d = 0; d < f.p; ++d) CHECK(status[d].ok()) << status[d];
  std::string json = absl::StrFormat(
      "{\"train\": {\"layers\": %d, \"hidden\": %d, \"heads\": %d, \"ffn\": "
      "%d, \"seq_len\": %d, \"micro_batch\": %d, \"microbatches\": %d, "
      "\"pipeline\": %d, \"schedule\": \"%s\", \"lr\": %g, "
      "\"iterations\": %d, \"seconds\": %.1f, \"curve\": [",
      f.model.layers, f.model.hidden, f.model.heads, f.model.ffn, f.model.seq,
      f.model.b, f.model.m, f.p, f.kind, f.lr, f.iterations, total);
  for (size_t i = 0; i < curve.size(); ++i) {
    absl::StrAppend(&json, i ? ", " : "",
                    absl::StrFormat("[%d, %.4f]", curve[i].first,
                                    curve[i].second));
  }
  json += "]}}";
  std::printf("%s\n", json.c_str());
  return 0;
}

}  // namespace
}  // namespace chronos::worker

int main(int argc, char** argv) {
  using chronos::worker::TrainFlags;
  CLI::App app{"Executor overhead vs bare compute; --train for a full run"};
  std::string data = "../shared/data/tinyshakespeare.txt";
  bool train = false;
  int warmup = 3, iters = 15, threads = 2;
  TrainFlags f;
  app.add_option("--data", data, "text corpus");
  app.add_flag("--train", train, "run a pipeline training job instead");
  app.add_option("--warmup", warmup, "overhead: unmeasured iterations");
  app.add_option("--iters", iters, "overhead: measured iterations");
  app.add_option("--threads", threads, "overhead: intra-op threads (p1)");
  app.add_option("--layers", f.model.layers);
  app.add_option("--hidden", f.model.hidden);
  app.add_option("--heads", f.model.heads);
  app.add_option("--ffn", f.model.ffn);
  app.add_option("--seq", f.model.seq);
  app.add_option("--b", f.model.b);
  app.add_option("--m", f.model.m);
  app.add_option("--p", f.p);
  app.add_option("--v", f.v);
  app.add_option("--kind", f.kind);
  app.add_option("--iterations", f.iterations);
  app.add_option("--lr", f.lr);
  app.add_option("--min-lr", f.min_lr);
  app.add_option("--lr-warmup", f.warmup);
  app.add_option("--weight-decay", f.weight_decay);
  app.add_option("--grad-clip", f.grad_clip);
  app.add_option("--every", f.every);
  CLI11_PARSE(app, argc, argv);
  return train ? chronos::worker::Train(data, f)
               : chronos::worker::Overhead(data, warmup, iters, threads);
}
