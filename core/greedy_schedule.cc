// List-scheduled pipelines: each device, when free, runs the most urgent
// operation whose inputs have arrived: the oldest BI (it sits on the
// critical path back to device 0), then F of a micro-batch already started
// on the device, then F of a new micro-batch while fewer than the cap are in
// flight, then the oldest deferred BW. Costs are the cost model's, so the
// order adapts to uneven F/BI/BW and to communication latency.
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/generators_internal.h"

namespace chronos::internal {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();

}  // namespace

absl::StatusOr<Schedule> GreedyCompute(const ShapeSpec& shape, std::vector<int> placement,
                                       bool split) {
  const int p = shape.num_devices, m = shape.num_microbatches;
  const int C = static_cast<int>(placement.size());
  auto dur = [&](const std::vector<double>& v, int c) {
    return v.empty() ? 1.0 : std::max(v[c], 1e-12);
  };
  const double comm = shape.costs.p2p_seconds;
  std::vector<std::vector<int>> chunks(p);
  for (int c = 0; c < C; ++c) chunks[placement[c]].push_back(c);
  std::vector<int> cap(p);
  for (int d = 0; d < p; ++d) {
    cap[d] = shape.inflight_cap > 0 ? shape.inflight_cap : std::numeric_limits<int>::max();
    if (shape.block.round_trip_caps) {
      // The chunks after the device's first, there and back, measured in
      // the device's own work per micro-batch (each of its chunks' F + B),
      // plus the micro-batch being worked on.
      const int own = static_cast<int>(chunks[d].size());
      const int after = C - 1 - chunks[d].front();
      cap[d] = std::min(cap[d], (after + own - 1) / own + 1);
    }
  }

  std::vector<std::vector<double>> f_ready(C, std::vector<double>(m, kNever));
  std::vector<std::vector<double>> b_ready(C, std::vector<double>(m, kNever));
  std::vector<std::vector<double>> w_ready(C, std::vector<double>(m, kNever));
  for (int mb = 0; mb < m; ++mb) f_ready[0][mb] = 0;
  std::vector<int> f_next(C, 0), b_next(C, 0), w_next(C, 0);
  std::vector<double> free_at(p, 0);
  std::vector<int> started(p, 0), finished(p, 0);
  // Per device and micro-batch: local chunks whose last backward is pending.
  std::vector<std::vector<int>> pending(p, std::vector<int>(m, 0));
  for (int d = 0; d < p; ++d) {
    for (int mb = 0; mb < m; ++mb) pending[d][mb] = static_cast<int>(chunks[d].size());
  }

  Schedule s = Skeleton(shape.kind, p, C / p, m, placement);

  struct Pick {
    int kind = -1;  // 0 BI/B, 1 F late, 2 F new, 3 BW
    int chunk = -1, mb = -1;
    double ready = kNever;
  };
  // The best operation device d could start at time t (or the earliest one
  // it could start at all, when nothing is ready by t).
  auto choose = [&](int d, double t) {
    Pick best;
    auto consider = [&](int kind, int c, int mb, double ready) {
      if (ready == kNever) return;
      const bool now = ready <= t;
      const bool best_now = best.ready <= t;
      if (best.kind < 0 || (now && !best_now) ||
          (now && best_now && (kind < best.kind || (kind == best.kind && mb < best.mb))) ||
          (!now && !best_now && ready < best.ready)) {
        best = {kind, c, mb, ready};
      }
    };
    const int first_chunk = chunks[d].front();
    for (int c : chunks[d]) {
      if (b_next[c] < m) consider(0, c, b_next[c], b_ready[c][b_next[c]]);
      if (f_next[c] < m) {
        const bool fresh = c == first_chunk;
        if (!fresh) {
          consider(1, c, f_next[c], f_ready[c][f_next[c]]);
        } else if (started[d] - finished[d] < cap[d]) {
          consider(2, c, f_next[c], f_ready[c][f_next[c]]);
        }
      }
      if (split && w_next[c] < m) consider(3, c, w_next[c], w_ready[c][w_next[c]]);
    }
    return best;
  };

  const int total = m * C * (split ? 3 : 2);
  for (int done = 0; done < total; ++done) {
    int dev = -1;
    Pick pick;
    double when = kNever;
    for (int d = 0; d < p; ++d) {
      Pick cand = choose(d, free_at[d]);
      if (cand.kind < 0) continue;
      const double t = std::max(free_at[d], cand.ready);
      if (cand.ready > free_at[d]) cand = choose(d, t);  // best among those ready at t
      if (t < when) {
        when = t;
        dev = d;
        pick = cand;
      }
    }
    if (dev < 0) {
      return absl::InvalidArgumentError(absl::StrCat("schedule.inflight_cap ", shape.inflight_cap,
                                                     " leaves the ", shape.kind,
                                                     " schedule unable to make progress"));
    }
    const int c = pick.chunk, mb = pick.mb;
    const int first_chunk = chunks[dev].front();
    double end = when;
    ActionType type;
    switch (pick.kind) {
      case 0:
        type = split ? ActionType::kBI : ActionType::kB;
        end += split ? dur(shape.costs.backward_input, c)
                     : dur(shape.costs.backward_input, c) + dur(shape.costs.backward_weight, c);
        ++b_next[c];
        if (c > 0) b_ready[c - 1][mb] = end + (placement[c - 1] != dev ? comm : 0);
        if (split) {
          w_ready[c][mb] = end;
        } else if (--pending[dev][mb] == 0) {
          ++finished[dev];
        }
        break;
      case 1:
      case 2:
        type = ActionType::kF;
        end += dur(shape.costs.forward, c);
        ++f_next[c];
        if (c == first_chunk) ++started[dev];
        if (c + 1 < C) {
          f_ready[c + 1][mb] = end + (placement[c + 1] != dev ? comm : 0);
        } else {
          b_ready[c][mb] = end;
        }
        break;
      default:
        type = ActionType::kBW;
        end += dur(shape.costs.backward_weight, c);
        ++w_next[c];
        if (--pending[dev][mb] == 0) ++finished[dev];
        break;
    }
    free_at[dev] = end;
    s.devices[dev].push_back(Action::Compute(type, c, mb));
  }
  return s;
}

}  // namespace chronos::internal
