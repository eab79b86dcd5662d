#include "core/simulator.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace chronos {
namespace {

enum Cat { kAct = 0, kOff = 1, kBuf = 2, kOpt = 3 };

struct MemEvent {
  double time;
  int64_t seq;
  Cat cat;
  int64_t delta;
};

constexpr double kUnknown = -1.0;

// Per (chunk, micro-batch) replay state.
struct Slot {
  double f_start = kUnknown, f_end = kUnknown;
  double bwd_end = kUnknown;   // B or BI
  double last_end = kUnknown;  // B or BW
  double offload_end = kUnknown, reload_end = kUnknown;
  MemoryPolicy policy;
  bool rebuilt = false;  // chunk-granularity RECOMPUTE done
  int64_t offloaded = 0;
};

class Replayer {
 public:
  Replayer(const Schedule& s, const CostModel& c, const SimOptions& o)
      : s_(s), costs_(c), o_(o), p_(s.num_devices), C_(s.num_chunks()), m_(s.num_microbatches) {}

  absl::StatusOr<SimResult> Run() {
    if (costs_.num_chunks() != C_) {
      return absl::InvalidArgumentError(
          absl::StrCat("cost model has ", costs_.num_chunks(), " chunks, schedule ", C_));
    }
    slots_.assign(static_cast<size_t>(C_) * m_, Slot{});
    act_arrival_.assign(static_cast<size_t>(C_) * m_, kUnknown);
    grad_arrival_.assign(static_cast<size_t>(C_) * m_, kUnknown);
    life_index_.assign(static_cast<size_t>(C_) * m_, 0);
    dev_.assign(p_, Device{});
    link_free_.assign(static_cast<size_t>(p_) * p_, 0.0);
    events_.assign(p_, {});
    result_.devices.assign(p_, {});
    full_units_.resize(C_);
    wgrad_units_.resize(C_);
    for (int c = 0; c < C_; ++c) {
      full_units_[c] = costs_.KeptUnitBytes(c, SaveMode::kAll);
      wgrad_units_[c] = costs_.WeightGradUnitBytes(c);
    }

    bool progress = true;
    while (progress) {
      progress = false;
      for (int d = 0; d < p_; ++d) {
        while (dev_[d].pc < static_cast<int>(s_.devices[d].size())) {
          if (!Step(d)) break;
          progress = true;
        }
      }
      if (!progress) progress = TryOptimStep();
    }
    for (int d = 0; d < p_; ++d) {
      if (dev_[d].pc < static_cast<int>(s_.devices[d].size())) {
        return absl::InvalidArgumentError(absl::StrCat("schedule cannot be replayed: device ", d,
                                                       " is stuck at action ", dev_[d].pc, " ",
                                                       ActionToString(s_.devices[d][dev_[d].pc])));
      }
    }
    Finish();
    return std::move(result_);
  }

 private:
  struct Device {
    int pc = 0;
    double compute_free = 0, d2h_free = 0, h2d_free = 0, ar_free = 0;
    double issue = 0;  // start of the last compute action: when the host
                       // thread reaches the next asynchronous action
    double last_backward_end = 0;
    double last_f_end = 0;
    std::vector<std::pair<double, double>> h2d_busy;  // copies on the H2D engine
    std::vector<std::pair<double, double>> d2h_busy;  // copies on the D2H engine
    bool at_optim = false;
  };

  Slot& slot(int c, int mb) { return slots_[static_cast<size_t>(c) * m_ + mb]; }
  int Dev(int c) const { return s_.chunk_device[c]; }
  void Mem(int d, double t, Cat cat, int64_t delta) {
    if (delta != 0) events_[d].push_back({t, seq_++, cat, delta});
  }
  void Timeline(int d, Resource r, double start, double end) {
    if (o_.record_timeline) result_.timeline.push_back({d, dev_[d].pc, r, start, end});
  }
  double RunCompute(int d, double ready, double dur) {
    Device& v = dev_[d];
    const double start = std::max(v.compute_free, ready);
    v.compute_free = start + dur;
    v.issue = start;
    Timeline(d, Resource::kCompute, start, start + dur);
    return start;
  }
  // Bandwidth of one copy direction given whether the other is busy.
  double CopySeconds(int64_t bytes, bool d2h, bool other_busy) const {
    const auto& pr = costs_.profile();
    double bw = d2h ? pr.d2h_bandwidth() : pr.h2d_bandwidth();
    if (other_busy && pr.duplex_bandwidth() > 0) bw = std::min(bw, pr.duplex_bandwidth() / 2);
    return static_cast<double>(bytes) / bw;
  }

  // Executes device d's next action if its inputs are known; false if not.
  bool Step(int d) {
    const Action& a = s_.devices[d][dev_[d].pc];
    Device& v = dev_[d];
    const bool async = costs_.profile().async_copies();
    switch (a.type) {
      case ActionType::kF: {
        Slot& sl = slot(a.chunk, a.microbatch);
        double ready = 0;
        if (a.chunk > 0) {
          ready = Dev(a.chunk - 1) == d ? slot(a.chunk - 1, a.microbatch).f_end
                                        : act_arrival_[Index(a.chunk, a.microbatch)];
          if (ready == kUnknown) return false;
        }
        const ChunkCost& cc = costs_.chunk(a.chunk);
        const double start = RunCompute(d, ready, cc.forward_seconds);
        const double end = start + cc.forward_seconds;
        sl.f_start = start;
        sl.f_end = end;
        v.last_f_end = std::max(v.last_f_end, end);
        sl.policy = a.policy;
        result_.devices[d].busy_seconds += cc.forward_seconds;
        if (a.chunk > 0) Mem(d, start, kBuf, -MessageBytes());
        const int64_t kept = costs_.KeptBytes(a.chunk, SaveModeOf(a.policy));
        Mem(d, end, kAct, kept);
        if (a.chunk < C_ - 1) Mem(d, end, kBuf, MessageBytes());
        result_.activations.push_back({d, a.chunk, a.microbatch, end, 0, kept});
        life_index_[Index(a.chunk, a.microbatch)] = result_.activations.size() - 1;
        break;
      }
      case ActionType::kOffload:
      case ActionType::kReload: {
        Slot& sl = slot(a.chunk, a.microbatch);
        const bool off = a.type == ActionType::kOffload;
        if (off) {
          sl.offloaded =
              costs_.OffloadBytes(a.chunk, SaveModeOf(sl.policy), sl.policy.offload_fraction);
        }
        const int64_t bytes = sl.offloaded;
        double start, end;
        if (async) {
          double& engine = off ? v.d2h_free : v.h2d_free;
          const double other = off ? v.h2d_free : v.d2h_free;
          start = std::max({v.issue, engine, off ? sl.f_end : sl.offload_end});
          end = start + CopySeconds(bytes, off, other > start);
          engine = end;
          (off ? v.d2h_busy : v.h2d_busy).push_back({start, end});
          Timeline(d, off ? Resource::kD2H : Resource::kH2D, start, end);
        } else {
          const double dur = CopySeconds(bytes, off, false);
          start = RunCompute(d, off ? sl.f_end : sl.offload_end, dur);
          end = start + dur;
        }
        ActivationLife& life = result_.activations[life_index_[Index(a.chunk, a.microbatch)]];
        if (off) {
          sl.offload_end = end;
          life.offload_end = end;
          Mem(d, start, kOff, bytes);
          Mem(d, end, kAct, -bytes);
        } else {
          sl.reload_end = end;
          life.reload_start = start;
          Mem(d, start, kAct, bytes);
          Mem(d, end, kOff, -bytes);
        }
        break;
      }
      case ActionType::kRecompute: {
        Slot& sl = slot(a.chunk, a.microbatch);
        const SaveMode mode = SaveModeOf(sl.policy);
        const double dur = costs_.RecomputeSeconds(a.chunk, mode);
        const double start = RunCompute(d, sl.f_end, dur);
        result_.devices[d].busy_seconds += dur;
        result_.devices[d].recompute_seconds += dur;
        if (mode == SaveMode::kChunk) {
          Mem(d, start + dur, kAct,
              costs_.KeptBytes(a.chunk, SaveMode::kAll) - costs_.KeptBytes(a.chunk, mode));
          sl.rebuilt = true;
        }
        break;
      }
      case ActionType::kB:
      case ActionType::kBI: {
        Slot& sl = slot(a.chunk, a.microbatch);
        double ready = sl.f_end;
        if (a.chunk < C_ - 1) {
          ready = Dev(a.chunk + 1) == d ? slot(a.chunk + 1, a.microbatch).bwd_end
                                        : grad_arrival_[Index(a.chunk, a.microbatch)];
          if (ready == kUnknown) return false;
        }
        if (sl.policy.kind == PolicyKind::kOffload && sl.reload_end != kUnknown) {
          const double own = std::max(v.compute_free, ready);
          if (sl.reload_end > own) result_.devices[d].copy_wait_seconds += sl.reload_end - own;
          ready = std::max(ready, sl.reload_end);
        }
        const ChunkCost& cc = costs_.chunk(a.chunk);
        const bool split = a.type == ActionType::kBI;
        const double dur = split ? cc.backward_input_seconds : cc.backward_seconds;
        const double start = RunCompute(d, ready, dur);
        result_.devices[d].busy_seconds += dur;
        if (a.chunk < C_ - 1) Mem(d, start, kBuf, -MessageBytes());
        BackwardMemory(d, a.chunk, sl, start, dur, split);
        const double end = start + dur;
        sl.bwd_end = end;
        if (!split) sl.last_end = end;
        v.last_backward_end = std::max(v.last_backward_end, end);
        if (a.chunk > 0) Mem(d, end, kBuf, MessageBytes());
        result_.activations[life_index_[Index(a.chunk, a.microbatch)]].backward_start = start;
        break;
      }
      case ActionType::kBW: {
        Slot& sl = slot(a.chunk, a.microbatch);
        const ChunkCost& cc = costs_.chunk(a.chunk);
        const double start = RunCompute(d, sl.bwd_end, cc.backward_weight_seconds);
        const double end = start + cc.backward_weight_seconds;
        result_.devices[d].busy_seconds += cc.backward_weight_seconds;
        int64_t w = 0;
        for (int64_t b : wgrad_units_[a.chunk]) w += b;
        Mem(d, end, kAct, -w);
        sl.last_end = end;
        v.last_backward_end = std::max(v.last_backward_end, end);
        break;
      }
      case ActionType::kSendAct:
      case ActionType::kSendGrad: {
        const bool grad = a.type == ActionType::kSendGrad;
        const Slot& sl = slot(a.chunk, a.microbatch);
        const double produced = grad ? sl.bwd_end : sl.f_end;
        if (produced == kUnknown) return false;
        double& link = link_free_[static_cast<size_t>(d) * p_ + a.peer];
        const double start = std::max(produced, link);
        const double end = start + costs_.P2PSeconds(MessageBytes());
        link = end;
        if (grad) {
          grad_arrival_[Index(a.chunk - 1, a.microbatch)] = end;
        } else {
          act_arrival_[Index(a.chunk + 1, a.microbatch)] = end;
        }
        Mem(d, end, kBuf, -MessageBytes());
        Mem(a.peer, start, kBuf, MessageBytes());
        Timeline(d, Resource::kLink, start, end);
        break;
      }
      case ActionType::kRecvAct:
      case ActionType::kRecvGrad:
        break;  // posted at once; the consumer waits for the arrival
      case ActionType::kAllReduce: {
        const double dur = costs_.AllReduceSeconds(a.chunk, o_.data_parallel);
        const double start = std::max(v.ar_free, v.compute_free);
        v.ar_free = start + dur;
        Timeline(d, Resource::kAllReduce, start, start + dur);
        break;
      }
      case ActionType::kOptimStep:
        v.at_optim = true;
        return false;  // TryOptimStep runs it for all devices at once
    }
    v.pc++;
    return true;
  }

  // Per unit, in reverse order: rebuild what was dropped, free the forward
  // tensors, and (BI) keep the weight-gradient stash — the worker's order.
  void BackwardMemory(int d, int c, const Slot& sl, double start, double dur, bool split) {
    const SaveMode mode = sl.rebuilt ? SaveMode::kAll : SaveModeOf(sl.policy);
    const std::vector<int64_t>& kept_units = costs_.KeptUnitBytes(c, mode);
    const int n = static_cast<int>(kept_units.size());
    for (int k = 0; k < n; ++k) {
      const int u = n - 1 - k;
      const double t = start + dur * (k + 1) / n;
      const int64_t kept = kept_units[u];
      Mem(d, t, kAct, full_units_[c][u] - kept);
      Mem(d, t, kAct, -full_units_[c][u]);
      if (split) Mem(d, t, kAct, wgrad_units_[c][u]);
    }
  }

  // OPTIM_STEP: a collective (the global gradient norm), then each device's
  // update. Optimizer state kept in host memory is streamed layer by layer
  // (double-buffered): in, update, out. Two windows hide part of it, each as
  // far as the HBM that activations leave free allows, checked against the
  // activation curve at every instant (not its peak over the window):
  //  - out: updated state may stay in HBM and be written back through the
  //    D2H engine's idle time at the start of the next iteration (its
  //    warm-up, when activation memory is still low). In the steady state
  //    that is the previous iteration's write-back, so it is charged to
  //    this iteration's start and released piece by piece as it drains;
  //  - in: once that has drained, state is prefetched through the H2D
  //    engine's idle time, as fast as memory frees (mostly in the drain).
  // Only what fits in neither window stretches the step.
  bool TryOptimStep() {
    for (int d = 0; d < p_; ++d) {
      if (!dev_[d].at_optim) return false;
    }
    double ready = 0;
    for (int d = 0; d < p_; ++d) ready = std::max({ready, dev_[d].compute_free, dev_[d].ar_free});
    if (p_ > 1) ready += 2 * costs_.profile().p2p_latency_seconds();
    for (int d = 0; d < p_; ++d) {
      Device& v = dev_[d];
      const double frac = OptimFraction(d);
      const int64_t params = DeviceParams(d);
      const double update = costs_.OptimizerSeconds(params, 0.0);
      double start = ready;
      double stream = 0;
      if (frac > 0) {
        const auto& pr = costs_.profile();
        const int64_t state = OptimizerStateBytes(d, frac);
        const int64_t window = 2 * LargestUnitParams(d) * StateBytesPerParam();
        // HBM the streaming may fill beside the activations (unlimited
        // without a budget).
        const int64_t room = o_.hbm_budget > 0 ? o_.hbm_budget - StaticBytes(d, frac) - window
                                               : std::numeric_limits<int64_t>::max() / 4;
        const double h2d = pr.h2d_bandwidth(), d2h = pr.d2h_bandwidth();
        const TransientCurve curve = Transients(d);
        // Write-back first (it holds HBM from t = 0), then the prefetch from
        // when the write-back has drained, so the two never share HBM.
        std::vector<std::pair<double, int64_t>> released;
        const int64_t late =
            pr.async_copies() ? LateWriteBack(v, curve, room, state, d2h, &released) : 0;
        const double prefetch_from = released.empty() ? 0.0 : released.back().first;
        std::vector<std::pair<double, int64_t>> fetched;
        const int64_t early = Prefetch(v, curve, room, state, h2d, prefetch_from, ready, &fetched);
        const double in_rest = static_cast<double>(state - early);
        const double out = static_cast<double>(state - late);
        stream =
            std::max({in_rest / h2d, out / d2h,
                      pr.duplex_bandwidth() > 0 ? (in_rest + out) / pr.duplex_bandwidth() : 0.0});
        if (late > 0) {
          // The previous iteration's write-back, draining from t = 0.
          Mem(d, 0, kOpt, late);
          for (const auto& [t, bytes] : released) Mem(d, t, kOpt, -bytes);
        }
        for (const auto& [t, bytes] : fetched) Mem(d, t, kOpt, bytes);
        Mem(d, ready, kOpt, window);
        Mem(d, ready + update + stream, kOpt, -window - early + late);
        result_.devices[d].optimizer_stream_seconds = stream;
        result_.devices[d].optimizer_writeback_bytes = late;
      }
      v.compute_free = start + std::max(update, stream);
      Timeline(d, Resource::kCompute, start, start + std::max(update, stream));
      v.at_optim = false;
      v.pc++;
    }
    return true;
  }

  // Activations + buffers level of one device over time, from the memory
  // events recorded so far.
  struct TransientCurve {
    std::vector<double> time;
    std::vector<int64_t> level;       // after the event at time[i]
    std::vector<int64_t> suffix_max;  // max level over events i..end
    // Largest level from time t on (the drain).
    int64_t MaxAfter(double t) const {
      const size_t i = std::lower_bound(time.begin(), time.end(), t) - time.begin();
      if (i >= time.size()) return level.empty() ? 0 : level.back();
      // The level just before t still holds at t.
      return std::max(suffix_max[i], i > 0 ? level[i - 1] : int64_t{0});
    }
  };

  TransientCurve Transients(int d) const {
    std::vector<MemEvent> ev;
    for (const MemEvent& e : events_[d]) {
      if (e.cat == kAct || e.cat == kBuf) ev.push_back(e);
    }
    std::sort(ev.begin(), ev.end(), [](const MemEvent& a, const MemEvent& b) {
      return a.time < b.time || (a.time == b.time && a.seq < b.seq);
    });
    TransientCurve c;
    int64_t level = 0;
    for (const MemEvent& e : ev) {
      level += e.delta;
      c.time.push_back(e.time);
      c.level.push_back(level);
    }
    c.suffix_max.assign(c.level.size(), 0);
    for (size_t i = c.level.size(); i-- > 0;) {
      c.suffix_max[i] = std::max(c.level[i], i + 1 < c.level.size() ? c.suffix_max[i + 1] : 0);
    }
    return c;
  }

  // Idle intervals of a copy engine within [from, to).
  static std::vector<std::pair<double, double>> Gaps(std::vector<std::pair<double, double>> busy,
                                                     double from, double to) {
    std::sort(busy.begin(), busy.end());
    std::vector<std::pair<double, double>> gaps;
    double t = from;
    for (const auto& [a, b] : busy) {
      if (t >= to) break;
      if (b <= t) continue;
      if (a > t) gaps.push_back({t, std::min(a, to)});
      t = std::max(t, b);
    }
    if (t < to) gaps.push_back({t, to});
    return gaps;
  }

  // Bytes of updated state that can wait in HBM for the next iteration's
  // D2H idle time: the most that, draining from t = 0 through the engine's
  // gaps in pieces (each released when it has been copied), never pushes
  // activations + waiting state over `room`. Feasibility falls as the
  // amount grows, so bisect. `released` gets the pieces (time, bytes).
  int64_t LateWriteBack(const Device& v, const TransientCurve& curve, int64_t room, int64_t state,
                        double d2h, std::vector<std::pair<double, int64_t>>* released) const {
    constexpr int kPieces = 32;
    const auto gaps = Gaps(v.d2h_busy, 0, std::numeric_limits<double>::infinity());
    auto drain = [&](int64_t bytes) {
      std::vector<std::pair<double, int64_t>> out;
      const int64_t piece = std::max<int64_t>(1, bytes / kPieces);
      int64_t left = bytes;
      for (const auto& [a, b] : gaps) {
        double t = a;
        while (left > 0 && t < b) {
          const int64_t take = std::min(left, piece);
          const double need = static_cast<double>(take) / d2h;
          if (t + need > b) {  // the piece ends in a later gap
            const int64_t part = static_cast<int64_t>((b - t) * d2h);
            if (part > 0) out.push_back({b, part});
            left -= part;
            break;
          }
          t += need;
          out.push_back({t, take});
          left -= take;
        }
        if (left <= 0) break;
      }
      return out;
    };
    auto fits = [&](int64_t bytes, std::vector<std::pair<double, int64_t>>* pieces) {
      if (bytes > room) return false;
      *pieces = drain(bytes);
      // Waiting state at each activation event before the last release; a
      // piece released at the same instant still counts.
      int64_t waiting = bytes;
      size_t k = 0;
      const double end = pieces->empty() ? 0.0 : pieces->back().first;
      for (size_t i = 0; i < curve.time.size() && curve.time[i] < end; ++i) {
        while (k < pieces->size() && (*pieces)[k].first < curve.time[i]) {
          waiting -= (*pieces)[k++].second;
        }
        if (curve.level[i] + waiting > room) return false;
      }
      return true;
    };
    std::vector<std::pair<double, int64_t>> pieces;
    if (state <= 0 || !fits(0, &pieces)) return 0;
    if (fits(state, &pieces)) {
      *released = std::move(pieces);
      return state;
    }
    int64_t lo = 0, hi = state;
    for (int it = 0; it < 40 && hi - lo > (int64_t{1} << 20); ++it) {
      const int64_t mid = lo + (hi - lo) / 2;
      (fits(mid, &pieces) ? lo : hi) = mid;
    }
    fits(lo, &pieces);
    *released = std::move(pieces);
    return lo;
  }

  // State prefetched through the H2D engine's idle time in [from, to): it
  // stays in HBM until the step, so what has arrived by t must fit beside
  // the largest activation level from t on. Copies run at full rate and
  // stop at that envelope, which only rises as the drain frees memory.
  // `fetched` gets the arrivals (time, bytes), charged at the start of the
  // interval they arrive in.
  int64_t Prefetch(const Device& v, const TransientCurve& curve, int64_t room, int64_t state,
                   double h2d, double from, double to,
                   std::vector<std::pair<double, int64_t>>* fetched) const {
    int64_t have = 0;
    for (const auto& [a, b] : Gaps(v.h2d_busy, from, to)) {
      // Split the gap at the activation events inside it.
      size_t i = std::upper_bound(curve.time.begin(), curve.time.end(), a) - curve.time.begin();
      double t = a;
      while (t < b && have < state) {
        const double next = i < curve.time.size() ? std::min(b, curve.time[i]) : b;
        const int64_t cap = std::min(state, room - curve.MaxAfter(t));
        const int64_t add = std::min(cap - have, static_cast<int64_t>((next - t) * h2d));
        if (add > 0) {
          have += add;
          fetched->push_back({t, add});
        }
        t = next;
        ++i;
      }
    }
    return have;
  }

  int64_t StateBytesPerParam() const { return costs_.shape().mixed_precision ? 12 : 8; }
  int64_t LargestUnitParams(int d) const {
    int64_t largest = 0;
    for (int c : s_.DeviceChunks(d)) {
      for (const UnitCost& u : costs_.chunk(c).units) largest = std::max(largest, u.params);
    }
    return largest;
  }
  // Weights, gradients and the resident part of the optimizer state.
  int64_t StaticBytes(int d, double frac) const {
    int64_t total = 0;
    for (int c : s_.DeviceChunks(d)) {
      const ChunkCost& cc = costs_.chunk(c);
      total += cc.weight_bytes + cc.gradient_bytes + cc.optimizer_bytes -
               static_cast<int64_t>(static_cast<double>(cc.optimizer_bytes) * frac);
    }
    return total;
  }

  int64_t OptimizerStateBytes(int d, double frac) const {
    int64_t bytes = 0;
    for (int c : s_.DeviceChunks(d)) bytes += costs_.chunk(c).optimizer_bytes;
    return static_cast<int64_t>(static_cast<double>(bytes) * frac);
  }

  double OptimFraction(int d) const {
    if (d < static_cast<int>(o_.optimizer_offload.size())) {
      return std::clamp(o_.optimizer_offload[d], 0.0, 1.0);
    }
    return 0.0;
  }
  int64_t DeviceParams(int d) const {
    int64_t n = 0;
    for (int c : s_.DeviceChunks(d)) n += costs_.chunk(c).params;
    return n;
  }
  size_t Index(int c, int mb) const { return static_cast<size_t>(c) * m_ + mb; }
  int64_t MessageBytes() const { return costs_.shape().ActivationMessageBytes(); }

  void Finish() {
    double pipeline = 0, iteration = 0, busy = 0;
    for (int d = 0; d < p_; ++d) {
      pipeline = std::max(pipeline, dev_[d].last_backward_end);
      iteration = std::max(
          {iteration, dev_[d].compute_free, dev_[d].ar_free, dev_[d].d2h_free, dev_[d].h2d_free});
      busy += result_.devices[d].busy_seconds;
    }
    result_.pipeline_seconds = pipeline;
    for (int d = 0; d < p_; ++d) result_.devices[d].last_forward_end = dev_[d].last_f_end;
    result_.iteration_seconds = iteration;
    result_.bubble_ratio = pipeline > 0 ? 1.0 - busy / (p_ * pipeline) : 0.0;
    for (int d = 0; d < p_; ++d) SweepMemory(d);
    Inflight();
  }

  void SweepMemory(int d) {
    DeviceSimResult& r = result_.devices[d];
    MemoryBreakdown base;
    const double frac = OptimFraction(d);
    for (int c : s_.DeviceChunks(d)) {
      const ChunkCost& cc = costs_.chunk(c);
      base.weights += cc.weight_bytes;
      base.gradients += cc.gradient_bytes;
      const int64_t host = static_cast<int64_t>(static_cast<double>(cc.optimizer_bytes) * frac);
      base.optimizer += cc.optimizer_bytes - host;
      r.optimizer_host_bytes += host;
    }
    auto& ev = events_[d];
    std::sort(ev.begin(), ev.end(), [](const MemEvent& a, const MemEvent& b) {
      return a.time < b.time || (a.time == b.time && a.seq < b.seq);
    });
    MemoryBreakdown cur = base;
    r.peak_bytes = cur.DeviceTotal();
    r.at_peak = cur;
    if (o_.record_curves) r.curve.push_back({0.0, cur});
    for (const MemEvent& e : ev) {
      switch (e.cat) {
        case kAct:
          cur.activations += e.delta;
          break;
        case kOff:
          cur.offloaded += e.delta;
          break;
        case kBuf:
          cur.buffers += e.delta;
          break;
        case kOpt:
          cur.optimizer += e.delta;
          break;
      }
      if (cur.activations > r.peak_activation_bytes) {
        r.peak_activation_bytes = cur.activations;
        r.peak_activation_time = e.time;
      }
      r.peak_offloaded_bytes = std::max(r.peak_offloaded_bytes, cur.offloaded);
      r.peak_buffer_bytes = std::max(r.peak_buffer_bytes, cur.buffers);
      if (cur.DeviceTotal() > r.peak_bytes) {
        r.peak_bytes = cur.DeviceTotal();
        r.peak_time = e.time;
        r.at_peak = cur;
      }
      if (o_.record_curves) r.curve.push_back({e.time, cur});
    }
  }

  void Inflight() {
    for (int d = 0; d < p_; ++d) {
      std::vector<std::pair<double, int>> marks;
      for (int mb = 0; mb < m_; ++mb) {
        double first = 1e300, last = -1;
        for (int c : s_.DeviceChunks(d)) {
          const Slot& sl = slots_[Index(c, mb)];
          first = std::min(first, sl.f_start);
          last = std::max(last, sl.last_end);
        }
        if (last < 0) continue;
        marks.push_back({first, +1});
        marks.push_back({last, -1});
      }
      std::sort(marks.begin(), marks.end());
      int cur = 0, best = 0;
      for (const auto& [t, delta] : marks) {
        cur += delta;
        best = std::max(best, cur);
      }
      result_.devices[d].max_inflight = best;
    }
  }

  const Schedule& s_;
  const CostModel& costs_;
  const SimOptions& o_;
  const int p_, C_, m_;
  std::vector<Slot> slots_;
  std::vector<double> act_arrival_, grad_arrival_;
  std::vector<Device> dev_;
  std::vector<double> link_free_;
  std::vector<std::vector<MemEvent>> events_;
  std::vector<std::vector<int64_t>> full_units_, wgrad_units_;
  std::vector<size_t> life_index_;
  int64_t seq_ = 0;
  SimResult result_;
};

}  // namespace

absl::StatusOr<SimResult> Simulate(const Schedule& s, const CostModel& costs,
                                   const SimOptions& options) {
  return Replayer(s, costs, options).Run();
}

}  // namespace chronos
