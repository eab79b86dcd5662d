#include "core/idle_recompute.h"

#include <algorithm>

#include "core/status_macros.h"

namespace chronos {

std::vector<int> IdleRecomputeSlots(const Schedule& s, int device, int index) {
  const std::vector<Action>& list = s.devices[device];
  std::vector<int> out;
  if (index < 0 || index >= static_cast<int>(list.size()) ||
      list[index].type != ActionType::kRecompute) {
    return out;
  }
  const int c = list[index].chunk, mb = list[index].microbatch, C = s.num_chunks();
  for (int k = index - 1; k >= 0; --k) {
    const Action& a = list[k];
    // Not before the F whose input the rebuild starts from.
    if (a.type == ActionType::kF && a.chunk == c && a.microbatch == mb) break;
    const bool waits_for_activation =
        a.type == ActionType::kF && a.chunk > 0 && s.chunk_device[a.chunk - 1] != device;
    const bool waits_for_gradient =
        IsBackward(a.type) && a.chunk < C - 1 && s.chunk_device[a.chunk + 1] != device;
    if (waits_for_activation || waits_for_gradient) out.push_back(k);
  }
  return out;
}

void MoveActionBefore(Schedule* s, int device, int from, int to) {
  std::vector<Action>& list = s->devices[device];
  const Action a = list[from];
  list.erase(list.begin() + from);
  list.insert(list.begin() + to, a);
}

namespace {

bool Fits(const SimResult& r, const IdleRecomputeOptions& o) {
  for (const DeviceSimResult& d : r.devices) {
    if (o.hbm_budget > 0 && d.peak_bytes > o.hbm_budget) return false;
    if (o.activation_budget > 0 && d.peak_activation_bytes > o.activation_budget) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<int> PlaceRecomputesInIdleTime(Schedule* s, SimResult* sim, const CostModel& costs,
                                              const IdleRecomputeOptions& options) {
  int moved = 0, replays = 0;
  for (int d = 0; d < s->num_devices; ++d) {
    for (int i = 0; i < static_cast<int>(s->devices[d].size()); ++i) {
      if (s->devices[d][i].type != ActionType::kRecompute) continue;
      int at = i;
      bool any = false;
      // Nearest idle slot first; further back only while each step pays.
      for (int slot : IdleRecomputeSlots(*s, d, i)) {
        if (replays >= options.max_replays) return moved;
        Schedule trial = *s;
        MoveActionBefore(&trial, d, at, slot);
        ++replays;
        absl::StatusOr<SimResult> r = Simulate(trial, costs, options.sim);
        if (!r.ok()) break;  // a move the replay refuses is not taken
        if (r->iteration_seconds >= sim->iteration_seconds * (1 - 1e-9) || !Fits(*r, options)) {
          break;
        }
        *s = std::move(trial);
        *sim = *std::move(r);
        at = slot;
        any = true;
      }
      moved += any;
    }
  }
  return moved;
}

}  // namespace chronos
