// chronos-bench-executor: what the executor costs on top of the compute it
// schedules, and (with --train) a full pipeline training run.
//
// Overhead mode (default), per model shape (--shapes presets, or one
// "custom" shape when any of --layers/--hidden/--heads/--ffn/--seq/--b/--m
// is given):
//   p1        one device, whole model: Executor over a loopback transport vs
//             a bare loop of the same Chunk::Forward/Backward calls + the
//             same AdamW step.
//   KIND-sD   stage D of a 2-device pipeline of schedule KIND (--kinds;
//             1f1b with one chunk per device, chronos and the others with
//             two), emulated on its own: receives complete at once with
//             fixed data (the first time a buffer is used, the loopback's
//             N(0, 1) values), sends are dropped, so the time is this
//             stage's alone. Executor vs the same chunks' Forward/Backward
//             in a plain loop.
//   KIND-gloo (--gloo) the whole 2-device pipeline on two threads over Gloo
//             vs the two stages' bare loops on two threads: the difference
//             also holds the schedule's bubble and the transport's latency,
//             which are not executor overhead.
// The bare loop replays the compute actions of the executor's own action
// list (F, B, BI, BW, RECOMPUTE, OFFLOAD, RELOAD; OPTIM_STEP as
// AdamW::Step with the local gradient norm) in the same order on the same
// chunks, handing adjacent local chunks their tensors directly and feeding
// remote edges fixed tensors of the same shape: the difference is the
// interpretation, bookkeeping, receive buffers, loss accumulation, ledger
// and the transport's (no-op) calls. Both are timed the same way, wall
// clock and process CPU time around the call; the CPU time is the steadier
// figure on a shared machine (with one intra-op thread, the default, all
// compute runs on the calling thread; more threads on 2 busy cores made
// both sides several times slower and the figures meaningless). Executor and bare iterations
// alternate, the first of each pair switching every iteration (ABBA), so drift and order effects
// fall on both; overhead % = median(executor) / median(bare) - 1, and "paired" is the median over
// iterations of executor_i / bare_i - 1, with its interquartile range. Each row runs at least
// --iters measured pairs and keeps going (up to 200) until they took --min-seconds.
//
// Train mode: p stages as threads over Gloo, StageRunner end to end on a
// text corpus, the loss every --every iterations.
//
// Memory: unless --system-malloc, main() raises glibc's mmap and trim
// thresholds first. With the defaults each iteration's activations are
// returned to the kernel and faulted back in; on a 2-core VM that was more
// than half of the time at b = 8 and most of the run-to-run noise.
//
// Output: progress on stderr; a table, then one JSON object on the last
// line of stdout.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
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
#include "absl/strings/str_split.h"
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

// Wall clock and the process's CPU time (all its threads), in seconds. With
// one intra-op thread the compute runs on the calling thread, so CPU time
// is the work done, and unlike wall time it does not grow while other jobs
// on the machine hold the core.
struct Timing {
  double wall = 0, cpu = 0;
  Timing operator-(const Timing& o) const { return {wall - o.wall, cpu - o.cpu}; }
};

Timing Now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return {std::chrono::duration<double>(Clock::now().time_since_epoch()).count(),
          ts.tv_sec + 1e-9 * ts.tv_nsec};
}

struct ModelConfig {
  std::string name;
  int layers = 4, hidden = 128, heads = 4, ffn = 344, seq = 64;
  int b = 8, m = 8;
};

v1::JobSpec MakeSpec(const ModelConfig& c, const std::string& data, int p, const std::string& kind,
                     int v, const std::vector<int>& layers) {
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

Schedule BuildSchedule(const v1::JobSpec& spec, const std::string& kind, int v,
                       const std::vector<int>& layers) {
  const v1::DeviceProfile cpu = *BuiltinDeviceProfile("cpu");
  CostModel costs(ModelShapeFromSpec(spec, cpu), cpu, layers);
  auto s = GenerateSchedule(
      ScheduleShape(kind, spec.parallel().pipeline(), v, spec.training().microbatches(), costs));
  CHECK(s.ok()) << s.status();
  CHECK(ApplyMemoryPolicy(&*s, UniformPolicy(*s, MemoryPolicy::Keep()), costs).ok());
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
  std::vector<int> local;  // global chunk -> index in chunks, or -1
  std::unique_ptr<AdamW> adam;
  MemoryLedger ledger;
  std::unique_ptr<ActivationStash> stash;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<Executor> executor;
  std::vector<Batch> batches;
  at::Tensor fake_act, fake_grad;                     // what the bare loop feeds remote edges
  std::vector<at::Tensor> handoff_act, handoff_grad;  // [chunk * m + mb]
  int num_chunks = 0;
  int m = 0;
  double loss_scale = 0;

  Stage(const v1::JobSpec& spec, const Schedule& s, int device, std::unique_ptr<Communicator> c,
        const TokenSource& tokens) {
    dims = ModelDimsFromSpec(spec, false);
    num_chunks = s.num_chunks();
    m = s.num_microbatches;
    local.assign(num_chunks, -1);
    std::vector<Chunk*> raw;
    std::vector<Param*> params;
    int first = 0;
    for (int ch = 0; ch < num_chunks; ++ch) {
      if (s.chunk_device[ch] == device) {
        ChunkSpec cs{ch, first, s.chunk_layers[ch], ch == 0, ch == num_chunks - 1};
        local[ch] = static_cast<int>(chunks.size());
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
    auto e = Executor::Create(eo, s, raw, stash.get(), &ledger, comm.get(), adam.get());
    CHECK(e.ok()) << e.status();
    executor = std::move(*e);
    for (int mb = 0; mb < m; ++mb) {
      batches.push_back(tokens.Get(1, 0, 1, mb, m, dims.micro_batch, dims.seq_len, 1));
    }
    // Same distribution as the loopback transport's receives (N(0, 1)).
    fake_act = at::randn({dims.micro_batch, dims.seq_len, dims.hidden});
    fake_grad = at::randn({dims.micro_batch, dims.seq_len, dims.hidden});
    handoff_act.resize(num_chunks * m);
    handoff_grad.resize(num_chunks * m);
    loss_scale =
        1.0 / (static_cast<double>(dims.micro_batch) * static_cast<double>(dims.seq_len) * m);
  }

  // One executor iteration, timed like the bare loop.
  Timing RunExecutor(int64_t it) {
    const Timing t0 = Now();
    auto r = executor->RunIteration(it, batches);
    const Timing dt = Now() - t0;
    CHECK(r.ok()) << r.status();
    return dt;
  }

  // The same chunks' compute in the executor's own action order, with no
  // executor: direct calls, local hand-offs through two plain vectors,
  // fixed tensors on remote edges, no transport calls at all.
  Timing RunBare(int64_t it) {
    const Timing t0 = Now();
    const int last = num_chunks - 1;
    for (const Action& a : executor->actions()) {
      const int mb = a.microbatch;
      switch (a.type) {
        case ActionType::kF: {
          Chunk* c = chunks[local[a.chunk]].get();
          at::Tensor in;
          if (a.chunk == 0) {
            in = batches[mb].inputs;
          } else if (local[a.chunk - 1] >= 0) {
            in = std::move(handoff_act[a.chunk * m + mb]);
          } else {
            in = fake_act;
          }
          at::Tensor out = c->Forward(mb, in, a.chunk == last ? batches[mb].targets : at::Tensor(),
                                      SaveModeOf(a.policy), stash.get());
          if (a.chunk != last && local[a.chunk + 1] >= 0) {
            handoff_act[(a.chunk + 1) * m + mb] = std::move(out);
          }
          break;
        }
        case ActionType::kB:
        case ActionType::kBI: {
          Chunk* c = chunks[local[a.chunk]].get();
          at::Tensor go;
          if (a.chunk != last) {
            go = local[a.chunk + 1] >= 0 ? std::move(handoff_grad[a.chunk * m + mb]) : fake_grad;
          }
          at::Tensor gi = a.type == ActionType::kB
                              ? c->Backward(mb, go, loss_scale, stash.get())
                              : c->BackwardInput(mb, go, loss_scale, stash.get());
          if (a.chunk > 0 && local[a.chunk - 1] >= 0) {
            handoff_grad[(a.chunk - 1) * m + mb] = std::move(gi);
          }
          break;
        }
        case ActionType::kBW:
          chunks[local[a.chunk]]->BackwardWeight(mb, stash.get());
          break;
        case ActionType::kRecompute:
          chunks[local[a.chunk]]->Recompute(mb, stash.get());
          break;
        case ActionType::kOffload:
          stash->Offload(mb, a.chunk, a.policy.offload_fraction);
          break;
        case ActionType::kReload:
          stash->Reload(mb, a.chunk);
          break;
        case ActionType::kOptimStep:
          adam->Step(it, std::sqrt(adam->LocalGradSquaredNorm()));
          break;
        default:  // transport: nothing to do without peers
          break;
      }
    }
    const Timing dt = Now() - t0;
    TORCH_CHECK_EQ(stash->size(), 0u) << "bare loop left stashed tensors";
    return dt;
  }
};

struct OverheadFlags {
  int warmup = 2, iters = 11, threads = 1;
  double min_seconds = 4;
  bool gloo = false, verbose = false, flush_denormal = false;
  bool system_malloc = false;
  std::vector<std::string> kinds = {"1f1b", "chronos"};
};
OverheadFlags g_flags;

// Medians and the paired ratio for one clock.
struct Stats {
  double executor = 0, bare = 0;        // medians, seconds
  double paired = 0;                    // median of executor_i / bare_i - 1
  double paired_lo = 0, paired_hi = 0;  // its 25th and 75th percentiles
  double overhead() const { return executor / bare - 1; }
};

struct Row {
  std::string shape, mode;
  int iters = 0;
  Stats wall, cpu;
  bool has_cpu = true;
};

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

Stats MakeStats(const std::vector<double>& ex, const std::vector<double>& bare) {
  std::vector<double> ratio;
  for (size_t i = 0; i < ex.size(); ++i) ratio.push_back(ex[i] / bare[i] - 1);
  Stats r;
  r.executor = Quantile(ex, 0.5);
  r.bare = Quantile(bare, 0.5);
  r.paired = Quantile(ratio, 0.5);
  r.paired_lo = Quantile(ratio, 0.25);
  r.paired_hi = Quantile(ratio, 0.75);
  return r;
}

Row MakeRow(const std::string& shape, const std::string& mode, const std::vector<Timing>& ex,
            const std::vector<Timing>& bare, bool has_cpu) {
  std::vector<double> ew, bw, ec, bc;
  for (const Timing& t : ex) {
    ew.push_back(t.wall);
    ec.push_back(t.cpu);
  }
  for (const Timing& t : bare) {
    bw.push_back(t.wall);
    bc.push_back(t.cpu);
  }
  Row r{shape, mode, static_cast<int>(ex.size()), MakeStats(ew, bw), MakeStats(ec, bc), has_cpu};
  std::fprintf(stderr, "  %-8s %-14s wall: executor %.2f ms, bare %.2f ms, %+.2f%%", shape.c_str(),
               mode.c_str(), r.wall.executor * 1e3, r.wall.bare * 1e3, 100 * r.wall.overhead());
  if (has_cpu) {
    std::fprintf(stderr, "; cpu: %+.2f%%", 100 * r.cpu.overhead());
  }
  std::fprintf(stderr, " (%d pairs)\n", r.iters);
  return r;
}

// Executor and bare iterations alternate (ABBA).
Row Measure(const std::string& shape, const std::string& mode, Stage& st, int warmup, int iters) {
  std::vector<Timing> ex, bare;
  int64_t it = 1;
  double measured = 0;
  // At least `iters` measured pairs; more, up to 200, until the measured
  // pairs took g_flags.min_seconds (short shapes get more samples).
  for (int i = 0; i < warmup + iters || (measured < g_flags.min_seconds && i < warmup + 200); ++i) {
    Timing e, b;
    if (i % 2 == 0) {
      e = st.RunExecutor(it++);
      b = st.RunBare(it++);
    } else {
      b = st.RunBare(it++);
      e = st.RunExecutor(it++);
    }
    if (g_flags.verbose) {
      std::fprintf(stderr,
                   "    %s %s %d: executor %.2f ms (cpu %.2f), bare %.2f ms "
                   "(cpu %.2f)\n",
                   shape.c_str(), mode.c_str(), i, e.wall * 1e3, e.cpu * 1e3, b.wall * 1e3,
                   b.cpu * 1e3);
    }
    if (i >= warmup) {
      ex.push_back(e);
      bare.push_back(b);
      measured += e.wall + b.wall;
    }
  }
  return MakeRow(shape, mode, ex, bare, /*has_cpu=*/true);
}

// The whole p-device pipeline on threads over Gloo vs each stage's bare
// loop on the same threads; a barrier before each timed iteration. Wall
// time only (the stages share the process's CPU clock).
Row MeasureGloo(const std::string& shape, const std::string& kind, const v1::JobSpec& spec,
                const Schedule& s, const TokenSource& tokens, int warmup, int iters) {
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
      auto comm = CreateGlooCommunicator(store, o);
      CHECK(comm.ok()) << comm.status();
      Communicator* raw = comm->get();
      Stage st(spec, s, d, std::move(*comm), tokens);
      int64_t it = 1;
      for (int i = 0; i < warmup + iters; ++i) {
        double e = 0, b = 0;
        for (int k = 0; k < 2; ++k) {
          CHECK(raw->Barrier(Group::kWorld).ok());
          if ((i + k) % 2 == 0) {
            e = st.RunExecutor(it++).wall;
          } else {
            b = st.RunBare(it++).wall;
          }
        }
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
  std::vector<Timing> e(iters), b(iters);
  for (int i = 0; i < iters; ++i) {
    for (int d = 0; d < p; ++d) {
      e[i].wall = std::max(e[i].wall, ex[d][i]);
      b[i].wall = std::max(b[i].wall, bare[d][i]);
    }
    e[i].cpu = b[i].cpu = 1;
  }
  return MakeRow(shape, absl::StrCat(kind, "-gloo"), e, b,
                 /*has_cpu=*/false);
}

ModelConfig Preset(const std::string& name) {
  if (name == "tiny") return {"tiny", 2, 64, 4, 172, 32, 4, 8};
  if (name == "small") return {"small", 4, 128, 4, 344, 64, 4, 8};
  if (name == "medium") return {"medium", 8, 256, 8, 688, 128, 4, 8};
  LOG(FATAL) << "unknown shape preset " << name << " (tiny, small, medium)";
  return {};
}

int Overhead(const std::string& data, const std::vector<ModelConfig>& shapes,
             const OverheadFlags& f) {
  g_flags = f;
  if (f.flush_denormal) at::globalContext().setFlushDenormal(true);
  auto tokens = TokenSource::Open(data, TokenFormat::kText, 256, 0);
  CHECK(tokens.ok()) << tokens.status();
  std::vector<Row> rows;
  for (const ModelConfig& c : shapes) {
    at::set_num_threads(f.threads);
    std::fprintf(stderr,
                 "%s: layers %d hidden %d heads %d ffn %d seq %d b %d m %d, "
                 "%d intra-op thread(s), %d warm-up + >= %d measured pairs "
                 "(>= %.0f s) per row\n",
                 c.name.c_str(), c.layers, c.hidden, c.heads, c.ffn, c.seq, c.b, c.m, f.threads,
                 f.warmup, f.iters, f.min_seconds);
    {
      const std::vector<int> layers = {c.layers};
      const v1::JobSpec spec = MakeSpec(c, data, 1, "1f1b", 1, layers);
      const Schedule s = BuildSchedule(spec, "1f1b", 1, layers);
      Stage st(spec, s, 0, std::make_unique<LoopbackCommunicator>(0, 1), **tokens);
      rows.push_back(Measure(c.name, "p1", st, f.warmup, f.iters));
    }
    for (const std::string& kind : f.kinds) {
      // 1F1B: one chunk per device; the others (interleaved, chronos...):
      // two, so the action list has local hand-offs (and BI/BW for the
      // zero-bubble kinds).
      const int v = kind == "1f1b" ? 1 : 2;
      if (c.layers < 2 * v) continue;
      const std::vector<int> layers = EvenLayers(c.layers, 2 * v);
      const v1::JobSpec spec = MakeSpec(c, data, 2, kind, v, layers);
      const Schedule s = BuildSchedule(spec, kind, v, layers);
      for (int d = 0; d < 2; ++d) {
        Stage st(spec, s, d, std::make_unique<QuietPeers>(d, 2), **tokens);
        rows.push_back(Measure(c.name, absl::StrCat(kind, "-s", d), st, f.warmup, f.iters));
      }
      if (f.gloo) {
        rows.push_back(MeasureGloo(c.name, kind, spec, s, **tokens, f.warmup, f.iters));
      }
    }
  }
  std::printf("%-8s %-14s %5s | %11s %11s %9s %9s | %9s %9s %17s\n", "shape", "mode", "pairs",
              "exec_ms", "bare_ms", "wall_ovh", "w_paired", "cpu_ovh", "c_paired", "c_paired_iqr");
  std::string json = "{\"overhead\": [";
  auto json_stats = [](const Stats& st) {
    return absl::StrFormat(
        "{\"executor_seconds\": %.6f, \"bare_seconds\": %.6f, "
        "\"overhead\": %.4f, \"paired\": %.4f, \"paired_p25\": %.4f, "
        "\"paired_p75\": %.4f}",
        st.executor, st.bare, st.overhead(), st.paired, st.paired_lo, st.paired_hi);
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::printf("%-8s %-14s %5d | %11.2f %11.2f %8.2f%% %8.2f%% | ", r.shape.c_str(),
                r.mode.c_str(), r.iters, r.wall.executor * 1e3, r.wall.bare * 1e3,
                100 * r.wall.overhead(), 100 * r.wall.paired);
    if (r.has_cpu) {
      std::printf("%8.2f%% %8.2f%% %7.2f..%.2f%%\n", 100 * r.cpu.overhead(), 100 * r.cpu.paired,
                  100 * r.cpu.paired_lo, 100 * r.cpu.paired_hi);
    } else {
      std::printf("%9s %9s %17s\n", "-", "-", "-");
    }
    absl::StrAppend(&json, i ? ", " : "",
                    absl::StrFormat("{\"shape\": \"%s\", \"mode\": \"%s\", "
                                    "\"pairs\": %d, \"wall\": %s",
                                    r.shape, r.mode, r.iters, json_stats(r.wall)),
                    r.has_cpu ? absl::StrCat(", \"cpu\": ", json_stats(r.cpu)) : "", "}");
  }
  absl::StrAppend(&json, "], \"threads\": ", f.threads, "}");
  std::printf("%s\n", json.c_str());
  return 0;
}

class PrintingSink : public ProgressSink {
 public:
  PrintingSink(int every, std::vector<std::pair<int64_t, double>>* curve)
      : every_(every), curve_(curve), start_(Clock::now()) {}
  absl::Status OnIteration(const v1::ProgressReport& r) override {
    if (!r.has_loss()) return absl::OkStatus();
    if (r.iteration() == 1 || r.iteration() % every_ == 0) {
      curve_->push_back({r.iteration(), r.loss()});
      std::printf("%8lld %10.4f %10.2f %10.1f\n", static_cast<long long>(r.iteration()), r.loss(),
                  Since(start_), r.tokens() / r.device().iteration_seconds());
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
  ModelConfig model{"train", 8, 128, 4, 344, 64, 8, 8};
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
      auto comm = CreateGlooCommunicator(store, o);
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
      f.model.layers, f.model.hidden, f.model.heads, f.model.ffn, f.model.seq, f.model.b, f.model.m,
      f.p, f.kind, f.lr, f.iterations, total);
  for (size_t i = 0; i < curve.size(); ++i) {
    absl::StrAppend(&json, i ? ", " : "",
                    absl::StrFormat("[%d, %.4f]", curve[i].first, curve[i].second));
  }
  json += "]}}";
  std::printf("%s\n", json.c_str());
  return 0;
}

}  // namespace
}  // namespace chronos::worker

int main(int argc, char** argv) {
  using chronos::worker::ModelConfig;
  using chronos::worker::OverheadFlags;
  using chronos::worker::TrainFlags;
  CLI::App app{"Executor overhead vs bare compute; --train for a full run"};
  std::string data = "data/tinyshakespeare.txt";
  std::string shapes = "tiny,small,medium";
  bool train = false;
  OverheadFlags o;
  TrainFlags f;
  ModelConfig cli = f.model;  // the model flags as given
  app.add_option("--data", data, "text corpus");
  app.add_flag("--train", train, "run a pipeline training job instead");
  app.add_option("--shapes", shapes,
                 "overhead: comma-separated presets (tiny, small, medium); "
                 "ignored when a model flag is given");
  app.add_option("--warmup", o.warmup, "overhead: unmeasured iterations");
  app.add_option("--iters", o.iters, "overhead: measured iterations");
  app.add_option("--threads", o.threads, "overhead: intra-op threads");
  app.add_option("--min-seconds", o.min_seconds,
                 "overhead: keep measuring a row (up to 200 pairs) until "
                 "its measured pairs took this long");
  app.add_flag("--gloo", o.gloo,
               "overhead: also time the 2-device pipeline over Gloo "
               "(includes the bubble)");
  app.add_option("--kinds", o.kinds, "overhead: 2-device schedules whose stages are emulated")
      ->delimiter(',');
  app.add_flag("--verbose", o.verbose, "overhead: every iteration's times");
  app.add_flag("--flush-denormal", o.flush_denormal, "overhead: flush denormal floats to zero");
  std::vector<CLI::Option*> model_opts = {
      app.add_option("--layers", cli.layers),
      app.add_option("--hidden", cli.hidden),
      app.add_option("--heads", cli.heads),
      app.add_option("--ffn", cli.ffn),
      app.add_option("--seq", cli.seq),
      app.add_option("--b", cli.b, "micro-batch size"),
      app.add_option("--m", cli.m, "micro-batches per iteration")};
  app.add_option("--p", f.p, "train: pipeline stages");
  app.add_option("--v", f.v, "train: chunks per device");
  app.add_option("--kind", f.kind, "train: schedule");
  app.add_option("--iterations", f.iterations);
  app.add_option("--lr", f.lr);
  app.add_option("--min-lr", f.min_lr);
  app.add_option("--lr-warmup", f.warmup);
  app.add_option("--weight-decay", f.weight_decay);
  app.add_option("--grad-clip", f.grad_clip);
  app.add_option("--every", f.every);
  app.add_flag("--system-malloc", o.system_malloc,
               "overhead: keep glibc's default malloc thresholds (see the "
               "header: page faults then dominate and add noise)");
  CLI11_PARSE(app, argc, argv);
  if (!train && !o.system_malloc) {
    // glibc serves these tensors (hundreds of KiB) with mmap, or trims the
    // heap after they are freed, so every iteration faults its activations
    // back in: on this VM that was over half the time and most of the
    // noise, for executor and bare loop alike. Keep freed memory instead.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  if (train) {
    f.model = cli;
    return chronos::worker::Train(data, f);
  }
  bool custom = false;
  for (CLI::Option* opt : model_opts) custom = custom || opt->count() > 0;
  std::vector<ModelConfig> list;
  if (custom) {
    // Unset model flags take the "small" preset's values.
    ModelConfig c = chronos::worker::Preset("small");
    if (model_opts[0]->count()) c.layers = cli.layers;
    if (model_opts[1]->count()) c.hidden = cli.hidden;
    if (model_opts[2]->count()) c.heads = cli.heads;
    if (model_opts[3]->count()) c.ffn = cli.ffn;
    if (model_opts[4]->count()) c.seq = cli.seq;
    if (model_opts[5]->count()) c.b = cli.b;
    if (model_opts[6]->count()) c.m = cli.m;
    c.name = "custom";
    list.push_back(c);
  } else {
    for (absl::string_view name : absl::StrSplit(shapes, ',')) {
      list.push_back(chronos::worker::Preset(std::string(name)));
    }
  }
  return chronos::worker::Overhead(data, list, o);
}
