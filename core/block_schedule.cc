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
#include <limits>
#include <set>
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

  // Free stretches of the circle as (phase, length); the one that wraps
  // past T is one stretch.
  std::vector<std::pair<double, double>> Gaps() const {
    const double tol = kEps * std::max(1.0, period_);
    if (busy_.empty()) return {{0.0, period_}};
    std::vector<std::pair<double, double>> busy = busy_;
    std::sort(busy.begin(), busy.end());
    std::vector<std::pair<double, double>> merged;
    for (const auto& [a, b] : busy) {
      if (!merged.empty() && a <= merged.back().second + tol) {
        merged.back().second = std::max(merged.back().second, b);
      } else {
        merged.push_back({a, b});
      }
    }
    std::vector<std::pair<double, double>> gaps;
    for (size_t i = 0; i < merged.size(); ++i) {
      const double from = merged[i].second;
      const double to = i + 1 < merged.size() ? merged[i + 1].first : merged[0].first + period_;
      if (to - from > tol) gaps.push_back({from >= period_ ? from - period_ : from, to - from});
    }
    return gaps;
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

// Whether `items` (lengths) can be laid into `gaps` (lengths), each item
// whole inside one gap; if so, `where` gets each item's gap and its offset
// there. The ops still to come on a device can wait for any gap (the circle
// repeats), so only lengths matter. A small exact search (a device has a
// handful of ops per period); past `budget` steps it gives up and answers
// yes, which only makes the beam keep a candidate it could have dropped.
bool Packs(const std::vector<double>& gaps, const std::vector<double>& items, double tol,
           std::vector<std::pair<int, double>>* where = nullptr) {
  std::vector<int> order(items.size());
  for (size_t i = 0; i < items.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return items[a] > items[b]; });
  std::vector<double> used(gaps.size(), 0.0);
  std::vector<std::pair<int, double>> at(items.size(), {-1, 0.0});
  int budget = 20000;
  bool exhausted = false;
  auto place = [&](auto&& self, size_t k) -> bool {
    if (k == order.size()) return true;
    if (--budget < 0) {
      exhausted = true;
      return true;
    }
    const double len = items[order[k]];
    for (size_t g = 0; g < gaps.size(); ++g) {
      // Gaps with the same room left are interchangeable.
      bool seen = false;
      for (size_t h = 0; h < g && !seen; ++h) {
        seen = std::abs((gaps[h] - used[h]) - (gaps[g] - used[g])) <= tol;
      }
      if (seen || used[g] + len > gaps[g] + tol) continue;
      at[order[k]] = {static_cast<int>(g), used[g]};
      used[g] += len;
      if (self(self, k + 1)) return true;
      used[g] -= len;
    }
    return false;
  };
  const bool ok = place(place, 0);
  if (ok && !exhausted && where != nullptr) *where = at;
  if (where != nullptr && exhausted) where->clear();
  return ok;
}

// Places one micro-batch's ops on period T; false if no room is left for a
// critical-path op. The F and BI (or B) chain is placed by a small beam
// search: taking the earliest free slot for every op is myopic, because an
// op's position decides which slots remain for the chain's later visits to
// the same device. With `glue`, each BI is tried both alone and with its BW
// right behind it (only with it, under `glue_all`); the beam keeps whichever
// ends the chain earliest. With `slot`, it keeps only candidates that leave
// room for everything still to be placed (BlockTuning::slot_weights).
bool PlaceBlock(const std::vector<int>& placement, const Durations& d, bool split, bool glue,
                bool slot, bool glue_all, double period, double turn_delay, int p,
                std::vector<BlockOp>* ops) {
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
  const double tol = kEps * std::max(1.0, period);
  std::vector<std::vector<int>> chain_on(p);  // chain indices, per device
  for (size_t k = 0; k < chain.size(); ++k) {
    chain_on[placement[chain[k].chunk]].push_back(static_cast<int>(k));
  }
  // Whether everything device `dev` has still to place (the chain's later
  // ops there and the BWs of BIs placed unglued) can fit the gaps the
  // candidate leaves. A candidate that fragments the circle so that some op
  // has no gap of its length would leave a BW overlapping the next op (the
  // real period then exceeds T) or the chain without a slot.
  auto room_left = [&](const Cand& c, int dev, size_t k) {
    std::vector<double> items;
    for (int j : chain_on[dev]) {
      if (j <= static_cast<int>(k)) continue;
      const ChainOp& rest = chain[j];
      if (rest.type != ActionType::kBI) {
        items.push_back(rest.dur);
      } else if (glue_all) {
        items.push_back(rest.dur + rest.bw);
      } else {
        items.push_back(rest.dur);
        items.push_back(d.bw[rest.chunk]);
      }
    }
    for (const Node* n = c.dev_last[dev]; n != nullptr; n = n->prev_on_device) {
      if (n->op.type == ActionType::kBI && n->op.glued == 0) items.push_back(d.bw[n->op.chunk]);
    }
    std::vector<double> gaps;
    for (const auto& [at, len] : circle_of(c, dev).Gaps()) gaps.push_back(len);
    return Packs(gaps, items, tol);
  };
  std::vector<Cand> beam(1);
  beam[0].dev_last.assign(p, nullptr);
  bool packed = split && slot;  // every candidate so far passed room_left
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
        if (glued == 0 && co.bw > 0 && glue_all) break;
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
    if (packed) {
      std::vector<Cand> fit;
      for (const Cand& c : next) {
        if (room_left(c, dev, k)) fit.push_back(c);
      }
      // Where no candidate leaves room for everything, lay the rest out as
      // before and let the runtime defer the BWs that find no gap.
      packed = !fit.empty();
      if (packed) next = std::move(fit);
    }
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
    // the others go where the packing found room for them (any gap will
    // do: the circle repeats, so a BW may run a period or more after its
    // BI), else into the first free gap after their BI, and where no free
    // slot is left one keeps the slot right after its BI and the runtime
    // defers it.
    std::vector<double> planned(C, -1);
    for (int dev = 0; packed && dev < p; ++dev) {
      std::vector<int> pending;
      std::vector<double> items;
      for (const BlockOp& op : *ops) {
        if (op.device == dev && op.type == ActionType::kBI && op.glued == 0) {
          pending.push_back(op.chunk);
          items.push_back(d.bw[op.chunk]);
        }
      }
      const std::vector<std::pair<double, double>> gaps = circles[dev].Gaps();
      std::vector<double> lens;
      for (const auto& [at, len] : gaps) lens.push_back(len);
      std::vector<std::pair<int, double>> where;
      if (pending.empty() || !Packs(lens, items, tol, &where) || where.empty()) continue;
      for (size_t i = 0; i < pending.size(); ++i) {
        const int c = pending[i];
        const double phase = gaps[where[i].first].first + where[i].second;
        double delta = std::fmod(phase - std::fmod(bi_end[c], period), period);
        if (delta < -tol) delta += period;
        planned[c] = bi_end[c] + std::max(0.0, delta);
      }
    }
    for (int c = C - 1; c >= 0; --c) {
      const int dev = placement[c];
      BlockOp op{ActionType::kBW, c, dev, d.bw[c]};
      const double s = glued[c]          ? bi_end[c]
                       : planned[c] >= 0 ? planned[c]
                                         : circles[dev].Fit(bi_end[c], d.bw[c]);
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
// F adds a new one, at the price of delaying that F. `order` is one
// device's (op index, micro-batch) list.
std::vector<std::pair<int, int>> WeightsFirst(const std::vector<std::pair<int, int>>& order,
                                              const std::vector<BlockOp>& ops, int first_chunk) {
  std::vector<std::pair<int, int>> out;
  out.reserve(order.size());
  std::vector<bool> taken(order.size(), false);
  std::set<std::pair<int, int>> bi_done;  // (chunk, micro-batch)
  for (size_t k = 0; k < order.size(); ++k) {
    if (taken[k]) continue;
    const BlockOp& a = ops[order[k].first];
    if (a.type == ActionType::kF && a.chunk == first_chunk) {
      for (size_t q = k + 1; q < order.size(); ++q) {
        const BlockOp& w = ops[order[q].first];
        if (!taken[q] && w.type == ActionType::kBW &&
            bi_done.count({w.chunk, order[q].second}) > 0) {
          out.push_back(order[q]);
          taken[q] = true;
        }
      }
    }
    if (a.type == ActionType::kBI) bi_done.insert({a.chunk, order[k].second});
    out.push_back(order[k]);
    taken[k] = true;
  }
  return out;
}

// Each device's actions for m micro-batches of the block repeated every
// `period`: the ops sorted by target time start + mb * period, as pairs
// (op index, micro-batch). With start = q T + r, the target time orders by
// (q + mb, r), so walking q + mb upwards over the ops sorted by r needs no
// sort of all m copies.
std::vector<std::vector<std::pair<int, int>>> DeviceOrders(const std::vector<BlockOp>& ops, int p,
                                                           int m, double period) {
  std::vector<std::vector<std::pair<int, int>>> out(p);
  std::vector<std::vector<std::tuple<double, int, int>>> by_phase(p);  // (r, q, op)
  int q_min = 0, q_max = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    const int q = static_cast<int>(std::floor(ops[i].start / period));
    const double r = ops[i].start - q * period;
    by_phase[ops[i].device].push_back({r, q, static_cast<int>(i)});
    q_min = i == 0 ? q : std::min(q_min, q);
    q_max = i == 0 ? q : std::max(q_max, q);
  }
  for (int dev = 0; dev < p; ++dev) {
    std::sort(by_phase[dev].begin(), by_phase[dev].end());
    out[dev].reserve(by_phase[dev].size() * m);
    for (int n = q_min; n <= q_max + m - 1; ++n) {
      for (const auto& [r, q, i] : by_phase[dev]) {
        const int mb = n - q;
        if (mb >= 0 && mb < m) out[dev].push_back({i, mb});
      }
    }
  }
  return out;
}

// DeviceOrders, then WeightsFirst on each device when asked: the orders the
// schedule will hold, so that the period search replays those.
std::vector<std::vector<std::pair<int, int>>> ScheduleOrders(const std::vector<BlockOp>& ops,
                                                             const std::vector<int>& placement,
                                                             int p, int m, double period,
                                                             bool weights_first) {
  std::vector<std::vector<std::pair<int, int>>> orders = DeviceOrders(ops, p, m, period);
  if (!weights_first) return orders;
  for (int dev = 0; dev < p; ++dev) {
    int first_chunk = 0;
    while (placement[first_chunk] != dev) ++first_chunk;
    orders[dev] = WeightsFirst(orders[dev], ops, first_chunk);
  }
  return orders;
}

// Runs the device orders as soon as each op's input has arrived (compute
// and one hop per device change, as the simulator does) and returns the
// makespan, and in `first_starts` when each micro-batch's first F began.
// A block whose BWs found no slot of their own runs slower than its
// period; this sees it, where (m - 1) T + span does not.
double ReplayMakespan(const std::vector<BlockOp>& ops,
                      const std::vector<std::vector<std::pair<int, int>>>& orders,
                      const std::vector<double>& real_dur, int m, double comm,
                      std::vector<double>* first_starts) {
  first_starts->assign(m, 0.0);
  const int n_ops = static_cast<int>(ops.size());
  // The op each op waits for (-1: none) and the ops that wait for it.
  std::vector<int> dep(n_ops, -1);
  std::vector<std::vector<int>> users(n_ops);
  {
    int max_chunk = 0;
    for (const BlockOp& op : ops) max_chunk = std::max(max_chunk, op.chunk);
    const int C = max_chunk + 1;
    std::vector<int> f(C, -1), back(C, -1);
    for (int i = 0; i < n_ops; ++i) {
      if (ops[i].type == ActionType::kF) f[ops[i].chunk] = i;
      if (ops[i].type == ActionType::kBI || ops[i].type == ActionType::kB) back[ops[i].chunk] = i;
    }
    for (int i = 0; i < n_ops; ++i) {
      const int c = ops[i].chunk;
      switch (ops[i].type) {
        case ActionType::kF:
          dep[i] = c > 0 ? f[c - 1] : -1;
          break;
        case ActionType::kBW:
          dep[i] = back[c];
          break;
        default:
          dep[i] = c + 1 < C ? back[c + 1] : f[C - 1];
          break;
      }
      if (dep[i] >= 0) users[dep[i]].push_back(i);
    }
  }
  const int p = static_cast<int>(orders.size());
  std::vector<double> end(static_cast<size_t>(n_ops) * m, -1.0);
  std::vector<size_t> next(p, 0);
  std::vector<double> free_at(p, 0.0);
  std::vector<int> work;
  for (int dev = 0; dev < p; ++dev) work.push_back(dev);
  double makespan = 0;
  size_t done = 0, total = 0;
  for (const auto& o : orders) total += o.size();
  while (!work.empty()) {
    const int dev = work.back();
    work.pop_back();
    while (next[dev] < orders[dev].size()) {
      const auto [i, mb] = orders[dev][next[dev]];
      double ready = 0;
      if (dep[i] >= 0) {
        const double e = end[static_cast<size_t>(dep[i]) * m + mb];
        if (e < 0) break;  // its input is not computed yet
        ready = e + (ops[dep[i]].device != dev ? comm : 0.0);
      }
      const double start = std::max(free_at[dev], ready);
      if (ops[i].type == ActionType::kF && ops[i].chunk == 0) (*first_starts)[mb] = start;
      const double fin = start + real_dur[i];
      end[static_cast<size_t>(i) * m + mb] = fin;
      free_at[dev] = fin;
      makespan = std::max(makespan, fin);
      ++next[dev];
      ++done;
      for (int u : users[i]) {
        if (ops[u].device != dev) work.push_back(ops[u].device);
      }
    }
  }
  return done == total ? makespan : std::numeric_limits<double>::infinity();
}

}  // namespace

absl::StatusOr<Schedule> BlockCompute(const ShapeSpec& shape, std::vector<int> placement,
                                      bool split) {
  const int p = shape.num_devices;
  const int C = static_cast<int>(placement.size());
  const int m = shape.num_microbatches;
  const BlockTuning& tune = shape.block;
  const bool weights_first = tune.weights_first && split;
  Durations d;
  // What the ops really take; a block laid out with unit costs still runs
  // at the cost model's speed, which the period search replays.
  auto real = [&](const std::vector<double>& v, int c) {
    return v.empty() ? 1.0 : std::max(v[c], 1e-12);
  };
  auto pick = [&](const std::vector<double>& v, int c) {
    return tune.uniform_costs ? 1.0 : real(v, c);
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
  auto real_duration = [&](const BlockOp& op) {
    switch (op.type) {
      case ActionType::kF:
        return real(shape.costs.forward, op.chunk);
      case ActionType::kBI:
        return real(shape.costs.backward_input, op.chunk);
      case ActionType::kBW:
        return real(shape.costs.backward_weight, op.chunk);
      default:
        return real(shape.costs.backward_input, op.chunk) +
               real(shape.costs.backward_weight, op.chunk);
    }
  };

  // T = the busiest device's work gives a bubble-free steady state, but the
  // chain may wait for free slots, lengthening fill and drain, and a BW
  // left without a slot of its own stretches the real period past T; a
  // slightly longer T can remove both. Unless the period is fixed, take the
  // period whose device orders, replayed with the real costs, finish first
  // among those that meet the in-flight cap.
  std::vector<BlockOp> ops;
  double period = 0;
  double best_makespan = std::numeric_limits<double>::infinity();
  const bool capped = shape.inflight_cap > 0;
  const int steps = tune.period_scale > 0 ? 1 : 401;
  for (int step = 0; step < steps; ++step) {
    const double scale = tune.period_scale > 0 ? tune.period_scale : 1.0 + 0.0025 * step;
    const double t = work * (1 + 1e-7) * scale;
    // With slots and glue, also try gluing every BW: the chain waits more,
    // but the circle is tiled by whole F and BI + BW pieces. Replay decides.
    for (const bool glue_all : {false, true}) {
      if (glue_all && !(tune.glue_weights && tune.slot_weights && split)) break;
      std::vector<BlockOp> trial;
      if (!PlaceBlock(placement, d, split, tune.glue_weights, tune.slot_weights, glue_all, t,
                      tune.turn_delay, p, &trial)) {
        continue;
      }
      if (capped && MaxInflight(trial, p, t) > shape.inflight_cap) continue;
      std::vector<double> dur;
      for (const BlockOp& op : trial) dur.push_back(real_duration(op));
      // Long runs replay a prefix and extrapolate at the steady state's
      // pace (the first device's spacing of new micro-batches over its last
      // p), which keeps p = 64, m = 512 well under a second.
      const int m_replay = std::min(m, 2 * p + 16);
      std::vector<double> first_starts;
      double makespan =
          ReplayMakespan(trial, ScheduleOrders(trial, placement, p, m_replay, t, weights_first),
                         dur, m_replay, shape.costs.p2p_seconds, &first_starts);
      if (m_replay < m) {
        const double pace = (first_starts[m_replay - 1] - first_starts[m_replay - 1 - p]) / p;
        makespan += (m - m_replay) * pace;
      }
      if (ops.empty() || makespan < best_makespan * (1 - 1e-12)) {
        best_makespan = makespan;
        period = t;
        ops = std::move(trial);
      }
    }
    // Longer periods cost more than they can win back once a block fits.
    if (!ops.empty() && step >= 40) break;
  }
  if (ops.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("schedule.inflight_cap ", shape.inflight_cap,
                                                   " cannot be met by the ", shape.kind,
                                                   " schedule with ", p, " devices"));
  }

  Schedule s = Skeleton(shape.kind, p, C / p, m, placement);
  const std::vector<std::vector<std::pair<int, int>>> orders =
      ScheduleOrders(ops, placement, p, m, period, weights_first);
  for (int dev = 0; dev < p; ++dev) {
    std::vector<Action> list;
    for (const auto& [i, mb] : orders[dev]) {
      list.push_back(Action::Compute(ops[i].type, ops[i].chunk, mb));
    }
    s.devices[dev] = std::move(list);
  }
  return s;
}

}  // namespace chronos::internal
