// Periodic building-block schedules: Chronos-Pipe (V placement) and the
// ZB-H1 peer (looped placement). See docs/architecture.md, "Schedules".
//
// One micro-batch's operations are placed on a circular timeline of period
// T, each no earlier than its dependency allows and where its device is free
// modulo T. Micro-batch j runs the same block shifted by j*T, so the oldest
// micro-batch's backward always comes first and BW (placed last) fills the
// slots F and BI leave free. Each device's actions are the block's ops sorted
// by target time (offset + j*T). That order cannot deadlock: every op's
// inputs come from ops with strictly earlier target times, so among blocked
// devices the one waiting on the earliest target could always proceed.
// Memory follows from the block: a micro-batch occupies device d from its
// first F there to its last BW, so d holds about lifetime_d / T of them.
// A smaller in-flight cap stretches T until it holds.
#include <algorithm>
#include <cmath>
#include <deque>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "core/generators_internal.h"

namespace chronos::internal {
namespace {

constexpr double kEps = 1e-9;

// Occupied phases of one device on the circle [0, T).
class Circle {
 public:
  explicit Circle(double period) : period_(period) {}

  // Earliest t >= t0 where [t, t + dur) is free modulo T, or -1 if none.
  double Fit(double t0, double dur) const {
    const double tol = kEps * std::max(1.0, period_);
    double t = t0;
    for (size_t iter = 0; iter < 4 * busy_.size() + 8; ++iter) {
      const double phase = Phase(t);
      double best_skip = -1;
      for (const auto& [a, b] : busy_) {
        double skip = -1;
        if (a < phase + dur - tol && phase < b - tol) skip = b - phase;
        const double tail = phase + dur - period_;  // wrapped part
        if (skip < 0 && tail > tol && a < tail - tol) skip = (period_ - phase) + b;
        if (skip >= 0 && (best_skip < 0 || skip < best_skip)) best_skip = skip;
      }
      if (best_skip < 0) return t;
      t += std::max(best_skip, tol);
      if (t - t0 > period_ + dur) return -1;
    }
    return -1;
  }

  // Absolute time at which the first busy slot ending after `t` ends; -1 if
  // the circle is empty.
  double NextBusyEnd(double t) const {
    if (busy_.empty()) return -1;
    const double phase = Phase(t);
    const double tol = kEps * std::max(1.0, period_);
    double best = -1;
    for (const auto& [a, b] : busy_) {
      double delta = b - phase;
      if (delta <= tol) delta += period_;
      if (best < 0 || delta < best) best = delta;
    }
    return t + best;
  }

  void Add(double start, double dur) {
    const double phase = Phase(start);
    if (phase + dur <= period_) {
      busy_.push_back({phase, phase + dur});
    } else {
      busy_.push_back({phase, period_});
      busy_.push_back({0.0, phase + dur - period_});
    }
  }

 private:
  double Phase(double t) const {
    double phase = std::fmod(t, period_);
    return phase < 0 ? phase + period_ : phase;
  }
  double period_;
  std::vector<std::pair<double, double>> busy_;
};

struct BlockOp {
  ActionType type;
  int chunk;
  int device;
  double dur;
  double start = 0;
  double glued = 0;  // BI only: its BW's duration, reserved right behind it
  double end() const { return start + dur; }
};

struct Durations {
  std::vector<double> f, bi, bw;
  double comm = 0;
};

// Candidate starts for an op of length `dur`: the earliest fit from `t0`,
// then the earliest fits after each following busy slot.
std::vector<double> CandidateStarts(const Circle& circle, double t0, double dur, int k) {
  std::vector<double> out;
  double t = t0;
  for (int i = 0; i < k; ++i) {
    const double s = circle.Fit(t, dur);
    if (s < 0) break;
    if (!out.empty() && s <= out.back() + 1e-12) break;
    out.push_back(s);
    t = circle.NextBusyEnd(s);
    if (t < 0) break;
  }
  return out;
}

// Places one micro-batch's ops on period T; false if no room is left for a
// critical-path op. The F and BI (or B) chain is placed by a small beam
// search: taking the earliest free slot for every op is myopic, because an
// op's position decides which slots remain for the chain's later visits to
// the same device. With `glue`, each BI is tried both alone and with its BW
// right behind it; the beam keeps whichever ends the chain earliest.
bool PlaceBlock(const std::vector<int>& placement, const Durations& d, bool split, bool glue,
                double period, double turn_delay, int p, std::vector<BlockOp>* ops) {
  const int C = static_cast<int>(placement.size());
  struct Node {
    BlockOp op;
    const Node* parent;
    const Node* prev_on_device;
  };
  struct Cand {
    const Node* last = nullptr;
    std::vector<const Node*> dev_last;
    double end = 0;
  };
  std::deque<Node> arena;  // stable addresses for the candidates' paths
  auto circle_of = [&](const Cand& c, int dev) {
    Circle circle(period);
    for (const Node* n = c.dev_last[dev]; n != nullptr; n = n->prev_on_device) {
      circle.Add(n->op.start, n->op.dur + n->op.glued);
    }
    return circle;
  };
  struct ChainOp {
    ActionType type;
    int chunk;
    double dur;
    double bw = 0;  // BI: the BW that may be glued behind it
  };
  std::vector<ChainOp> chain;
  for (int c = 0; c < C; ++c) chain.push_back({ActionType::kF, c, d.f[c]});
  for (int c = C - 1; c >= 0; --c) {
    chain.push_back({split ? ActionType::kBI : ActionType::kB, c,
                     split ? d.bi[c] : d.bi[c] + d.bw[c], split && glue ? d.bw[c] : 0.0});
  }
  const int beam_width = C <= 32 ? 8 : (C <= 64 ? 4 : 2);
  const int branch = 3;
  std::vector<Cand> beam(1);
  beam[0].dev_last.assign(p, nullptr);
  for (size_t k = 0; k < chain.size(); ++k) {
    const ChainOp& co = chain[k];
    const int dev = placement[co.chunk];
    std::vector<Cand> next;
    for (const Cand& cand : beam) {
      double dep = 0;
      if (cand.last != nullptr) {
        dep = cand.last->op.end() + (placement[cand.last->op.chunk] != dev ? d.comm : 0);
        if (static_cast<int>(k) == C) dep += turn_delay * period;
      }
      const Circle circle = circle_of(cand, dev);
      for (const double glued : {co.bw, 0.0}) {
        for (double s : CandidateStarts(circle, dep, co.dur + glued, branch)) {
          BlockOp op{co.type, co.chunk, dev, co.dur};
          op.start = s;
          op.glued = glued;
          arena.push_back(Node{op, cand.last, cand.dev_last[dev]});
          Cand nc;
          nc.last = &arena.back();
          nc.dev_last = cand.dev_last;
          nc.dev_last[dev] = nc.last;
          nc.end = op.end();
          next.push_back(std::move(nc));
        }
        if (glued == 0) break;
      }
    }
    if (next.empty()) return false;
    std::stable_sort(next.begin(), next.end(),
                     [](const Cand& a, const Cand& b) { return a.end < b.end; });
    if (static_cast<int>(next.size()) > beam_width) next.resize(beam_width);
    beam = std::move(next);
  }
  const Cand& best = beam.front();
  ops->clear();
  for (const Node* n = best.last; n != nullptr; n = n->parent) ops->push_back(n->op);
  std::reverse(ops->begin(), ops->end());
  if (split) {
    std::vector<Circle> circles;
    for (int dev = 0; dev < p; ++dev) circles.push_back(circle_of(best, dev));
    std::vector<double> bi_end(C);
    std::vector<bool> glued(C, false);
    for (const BlockOp& op : *ops) {
      if (op.type != ActionType::kBI) continue;
      bi_end[op.chunk] = op.end();
      glued[op.chunk] = op.glued > 0;
    }
    // BW is off the critical path: a glued one takes its reserved slot;
    // where no free slot is left it keeps the slot right after its BI and
    // the runtime defers it.
    for (int c = C - 1; c >= 0; --c) {
      const int dev = placement[c];
      BlockOp op{ActionType::kBW, c, dev, d.bw[c]};
      const double s = glued[c] ? bi_end[c] : circles[dev].Fit(bi_end[c], d.bw[c]);
      op.start = s < 0 ? bi_end[c] : s;
      if (s >= 0 && !glued[c]) circles[dev].Add(s, d.bw[c]);
      ops->push_back(op);
    }
  }
  return true;
}

int MaxInflight(const std::vector<BlockOp>& ops, int p, double period) {
  int worst = 0;
  for (int dev = 0; dev < p; ++dev) {
    double first = 1e300, last = -1e300;
    for (const BlockOp& op : ops) {
      if (op.device != dev) continue;
      first = std::min(first, op.start);
      last = std::max(last, op.end());
    }
    if (last < first) continue;
    const int n = static_cast<int>(std::ceil((last - first) / period - 1e-6));
    worst = std::max(worst, std::max(n, 1));
  }
  return worst;
}

// Moves every BW whose BI already ran ahead of the next F that starts a new
// micro-batch on the device: it frees the weight-gradient stash before the
// F adds a new one, at the price of delaying that F.
std::vector<Action> WeightsFirst(const std::vector<Action>& list, int first_chunk) {
  std::vector<Action> out;
  std::vector<bool> taken(list.size(), false);
  std::vector<std::pair<int, int>> bi_done;
  auto ran_bi = [&](const Action& w) {
    return std::find(bi_done.begin(), bi_done.end(),
                     std::make_pair(w.chunk, w.microbatch)) != bi_done.end();
  };
  for (size_t k = 0; k < list.size(); ++k) {
    if (taken[k]) continue;
    const Action& a = list[k];
    if (a.type == ActionType::kF && a.chunk == first_chunk) {
      for (size_t q = k + 1; q < list.size(); ++q) {
        if (!taken[q] && list[q].type == ActionType::kBW && ran_bi(list[q])) {
          out.push_back(list[q]);
          taken[q] = true;
        }
      }
    }
    if (a.type == ActionType::kBI) bi_done.push_back({a.chunk, a.microbatch});
    out.push_back(a);
    taken[k] = true;
  }
  return out;
}

}  // namespace

absl::StatusOr<Schedule> BlockCompute(const ShapeSpec& shape,
                                      std::vector<int> placement, bool split) {
  const int p = shape.num_devices;
  const int C = static_cast<int>(placement.size());
  const int m = shape.num_microbatches;
  const BlockTuning& tune = shape.block;
  Durations d;
  auto pick = [&](const std::vector<double>& v, int c) {
    return (v.empty() || tune.uniform_costs) ? 1.0 : std::max(v[c], 1e-12);
  };
  for (int c = 0; c < C; ++c) {
    d.f.push_back(pick(shape.costs.forward, c));
    d.bi.push_back(pick(shape.costs.backward_input, c));
    d.bw.push_back(pick(shape.costs.backward_weight, c));
  }
  d.comm = tune.uniform_costs ? 0.0 : shape.costs.p2p_seconds;

  double work = 0;
  for (int dev = 0; dev < p; ++dev) {
    double w = 0;
    for (int c = 0; c < C; ++c) {
      if (placement[c] == dev) w += d.f[c] + d.bi[c] + d.bw[c];
    }
    work = std::max(work, w);
  }
  // T = the busiest device's work gives a bubble-free steady state, but the
  // chain may wait for free slots, lengthening fill and drain (the block's
  // span); a slightly longer T can remove those waits. Unless the period is
  // fixed, take the least estimated makespan (m - 1) T + span among periods
  // that meet the in-flight cap.
  std::vector<BlockOp> ops;
  double period = 0, best_makespan = 1e300;
  const bool capped = shape.inflight_cap > 0;
  const int steps = tune.period_scale > 0 ? 1 : 401;
  for (int step = 0; step < steps; ++step) {
    const double scale = tune.period_scale > 0 ? tune.period_scale : 1.0 + 0.0025 * step;
    const double t = work * (1 + 1e-7) * scale;
    std::vector<BlockOp> trial;
    if (!PlaceBlock(placement, d, split, tune.glue_weights, t, tune.turn_delay, p, &trial)) {
      continue;
    }
    if (capped && MaxInflight(trial, p, t) > shape.inflight_cap) continue;
    double span = 0;
    for (const BlockOp& op : trial) span = std::max(span, op.end());
    const double makespan = (m - 1) * t + span;
    if (makespan < best_makespan * (1 - 1e-12)) {
      best_makespan = makespan;
      period = t;
      ops = std::move(trial);
    }
    // Longer periods cost more than they can win back once a block fits.
    if (!ops.empty() && step >= 40) break;
  }
  if (ops.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule.inflight_cap ", shape.inflight_cap, " cannot be met by the ",
        shape.kind, " schedule with ", p, " devices"));
  }

  Schedule s = Skeleton(shape.kind, p, C / p, m, placement);
  std::vector<std::vector<std::tuple<double, int, int>>> order(p);
  for (int mb = 0; mb < m; ++mb) {
    for (size_t i = 0; i < ops.size(); ++i) {
      order[ops[i].device].push_back({ops[i].start + mb * period, mb, static_cast<int>(i)});
    }
  }
  for (int dev = 0; dev < p; ++dev) {
    std::sort(order[dev].begin(), order[dev].end());
    std::vector<Action> list;
    for (const auto& [t, mb, i] : order[dev]) {
      list.push_back(Action::Compute(ops[i].type, ops[i].chunk, mb));
    }
    if (tune.weights_first && split) {
      int first_chunk = 0;
      while (placement[first_chunk] != dev) ++first_chunk;
      list = WeightsFirst(list, first_chunk);
    }
    s.devices[dev] = std::move(list);
  }
  return s;
}

}  // namespace chronos::internal
