// V-Min and V-Half: the building-block V schedules of Qi et al., "Pipeline
// Parallelism with Controllable Memory" (NeurIPS 2024).
//
// Every device holds two chunks of a V (device d: chunks d and 2p-1-d) and
// runs six unit operations per micro-batch: F of its first chunk (going
// down the V), F of its second chunk (coming back up), BI of the second
// chunk (the backward starts at device 0), BI of the first, and the two BWs.
// A building block fixes, per device, the unit slot at which micro-batch 0's
// four F/BI operations run; micro-batch k repeats it 6k slots later. The
// block's lifespans (slot of BI minus slot of F) set the activation memory:
// V-Min's chain never waits, V-Half spaces the first chunk's F and BI two
// slots apart per device. BWs go into the free slots, then warm-up and
// cool-down are squeezed: each operation moves to the earliest free slot
// after its inputs at which the device's peak memory does not grow. The
// steady state is left as the block made it.
//
// Times here are unit slots; the order each device runs is what survives,
// and the simulator then times it with the real costs.
#include <algorithm>
#include <array>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "core/generators_internal.h"

namespace chronos::internal {
namespace {

// Operation types, in the order the building block lists them.
enum Op : int {
  kFDown = 0,   // F of the device's first chunk
  kFUp = 1,     // F of its second chunk
  kBIDown = 2,  // BI of the second chunk (the backward enters at device 0)
  kBIUp = 3,    // BI of the first chunk
  kW = 4,       // a BW (kW for the second chunk, kW + 1 for the first when split)
};
constexpr int kSlotsPerMicrobatch = 6;

// Per operation type, the slot of each micro-batch's instance.
using Lanes = std::vector<std::vector<int>>;

// Micro-batch 0's slots of kFDown, kFUp, kBIDown, kBIUp on every device.
std::vector<std::array<int, 4>> BuildingBlock(int p, VShapeMemory memory) {
  std::vector<std::array<int, 4>> block(p);
  for (int d = 0; d < p; ++d) {
    if (memory == VShapeMemory::kMin) {
      // The F chain runs down and back up without a gap, and so does the
      // BI chain; two extra slots before the backward where p % 3 == 0,
      // where the block would otherwise put F and BI in the same slot
      // modulo 6.
      const int gap = p % 3 == 0 ? 2 : 0;
      block[d] = {d, 2 * p - 1 - d, 2 * p + gap + d, 4 * p + gap - 1 - d};
    } else {
      // The first chunk's F and BI advance two slots per device, so each
      // device's first-chunk activations live about half as long as in a
      // V whose chains never wait for a slot.
      const int gap = p % 2 == 0 ? 3 : 0;
      block[d] = {2 * d, 3 * p - 2 - d, 3 * p + gap + 2 * d - 1, 6 * p + gap - 2 - d};
    }
  }
  return block;
}

int LastSlot(const Lanes& lanes) {
  int last = -1;
  for (const auto& lane : lanes) {
    for (int t : lane) last = std::max(last, t);
  }
  return last;
}

// Puts the BWs into the device's free slots, each no earlier than a BI
// waiting for its BW: one lane for all BWs, or (split) one per chunk, the
// second chunk's first when both wait. BWs left over go after the last
// slot.
void PlaceWeights(Lanes* lanes, bool split) {
  const int bound = LastSlot(*lanes);
  lanes->resize(kW + (split ? 2 : 1));
  (*lanes)[kW].clear();
  if (split) (*lanes)[kW + 1].clear();
  std::array<int, 2> waiting = {0, 0};
  std::array<size_t, 4> next = {0, 0, 0, 0};
  for (int t = 0; t <= bound; ++t) {
    int type = -1;
    for (int k = 0; k < 4; ++k) {
      if (next[k] < (*lanes)[k].size() && (*lanes)[k][next[k]] == t) type = k;
    }
    if (type >= 0) {
      ++next[type];
      if (type == kBIDown || type == kBIUp) ++waiting[split ? type - kBIDown : 0];
      continue;
    }
    for (int w = 0; w < 2; ++w) {
      if (waiting[w] > 0) {
        (*lanes)[kW + w].push_back(t);
        --waiting[w];
        break;
      }
    }
  }
  int t = bound;
  for (int w = 0; w < 2; ++w) {
    for (; waiting[w] > 0; --waiting[w]) (*lanes)[kW + w].push_back(++t);
  }
}

// The device's memory, in micro-batch chunk activations, along its slots:
// each F adds one, each BW frees one. Without BW lanes, a BW runs in every
// free slot while a BI waits for one.
struct MemoryCurve {
  std::vector<int> level;  // after slot t
  int peak = 0;
};
MemoryCurve Memory(const Lanes& lanes) {
  const bool explicit_w = lanes.size() > static_cast<size_t>(kW);
  const int bound = LastSlot(lanes);
  std::vector<int> at(bound + 1, -1);
  for (size_t k = 0; k < lanes.size(); ++k) {
    for (int t : lanes[k]) at[t] = static_cast<int>(k);
  }
  MemoryCurve out;
  out.level.resize(bound + 1);
  int cur = 0, waiting = 0;
  for (int t = 0; t <= bound; ++t) {
    const int type = at[t];
    if (type == kFDown || type == kFUp) {
      ++cur;
    } else if (type == kBIDown || type == kBIUp) {
      ++waiting;
    } else if (type >= kW) {
      --cur;
    } else if (!explicit_w && waiting > 0) {
      --cur;
      --waiting;
    }
    out.level[t] = cur;
    out.peak = std::max(out.peak, cur);
  }
  return out;
}

// Runs every device's operations in slot order, each as soon as its inputs
// and the device allow, with unit durations; returns the start slots.
std::vector<Lanes> Compact(const std::vector<Lanes>& stages) {
  const int p = static_cast<int>(stages.size());
  std::vector<std::tuple<int, int, int, int>> all;  // slot, device, type, micro-batch
  for (int d = 0; d < p; ++d) {
    for (size_t k = 0; k < stages[d].size(); ++k) {
      for (size_t mb = 0; mb < stages[d][k].size(); ++mb) {
        all.emplace_back(stages[d][k][mb], d, static_cast<int>(k), static_cast<int>(mb));
      }
    }
  }
  std::sort(all.begin(), all.end());
  std::vector<Lanes> start(p);
  for (int d = 0; d < p; ++d) {
    start[d].resize(stages[d].size());
    for (size_t k = 0; k < stages[d].size(); ++k) start[d][k].assign(stages[d][k].size(), 0);
  }
  std::vector<int> device_free(p, 0);
  auto end_of = [&](int d, int k, int mb) { return start[d][k][mb] + 1; };
  for (const auto& [slot, d, k, mb] : all) {
    int ready = device_free[d];
    if ((k == kFDown || k == kBIDown) && d > 0) ready = std::max(ready, end_of(d - 1, k, mb));
    if ((k == kFUp || k == kBIUp) && d < p - 1) ready = std::max(ready, end_of(d + 1, k, mb));
    if (k > kFDown && k < kW) ready = std::max(ready, end_of(d, k - 1, mb));
    if (mb > 0) ready = std::max(ready, end_of(d, k, mb - 1));
    start[d][k][mb] = ready;
    device_free[d] = ready + 1;
  }
  return start;
}

// The squeeze: visits every operation in slot order and moves those of the
// warm-up (until device 0's first kBIUp; only when `with_weights`) and of
// the cool-down (after the last micro-batch's kFDown) to the earliest free
// slot after their inputs that keeps the device within the peak memory the
// block had. With `with_weights` the BWs are placed first and move too.
std::vector<Lanes> Squeeze(std::vector<Lanes> stages, bool with_weights, int m, int limit) {
  const int p = static_cast<int>(stages.size());
  if (with_weights) {
    for (Lanes& s : stages) PlaceWeights(&s, false);
  }
  std::vector<MemoryCurve> curve(p);
  std::vector<std::vector<char>> taken(p);
  std::vector<std::tuple<int, int, int, int>> order;  // slot, device, type, micro-batch
  for (int d = 0; d < p; ++d) {
    curve[d] = Memory(stages[d]);
    limit = std::max(limit, curve[d].peak);
    taken[d].assign(LastSlot(stages[d]) + 1, 0);
    for (size_t k = 0; k < stages[d].size(); ++k) {
      for (size_t mb = 0; mb < stages[d][k].size(); ++mb) {
        order.emplace_back(stages[d][k][mb], d, static_cast<int>(k), static_cast<int>(mb));
      }
    }
  }
  // Operations not yet visited keep their slots, so visiting in the
  // original slot order is visiting in the current one.
  std::sort(order.begin(), order.end());
  enum { kWarmup, kSteady, kCooldown } phase = kWarmup;
  for (const auto& [slot, d, k, mb] : order) {
    Lanes& s = stages[d];
    if (k == kBIUp && d == 0 && phase == kWarmup) phase = kSteady;
    const bool fixed = phase == kSteady || (phase == kWarmup && !with_weights);
    if (phase == kSteady && k == kFDown && mb == m - 1) phase = kCooldown;
    if (fixed) {
      taken[d][slot] = 1;
      continue;
    }
    int earliest = -1;
    if ((k == kFDown || k == kBIDown) && d > 0) earliest = std::max(earliest, stages[d - 1][k][mb]);
    if ((k == kFUp || k == kBIUp) && d < p - 1) {
      earliest = std::max(earliest, stages[d + 1][k][mb]);
    }
    if (k > kFDown && k < kW) earliest = std::max(earliest, s[k - 1][mb]);
    if (k == kW) {
      std::vector<int> bis = s[kBIDown];
      bis.insert(bis.end(), s[kBIUp].begin(), s[kBIUp].end());
      std::nth_element(bis.begin(), bis.begin() + mb, bis.end());
      earliest = std::max(earliest, bis[mb]);
    }
    if (mb > 0) earliest = std::max(earliest, s[k][mb - 1]);
    int chosen = slot;
    for (int t = earliest + 1; t < slot; ++t) {
      if (taken[d][t]) continue;
      if (with_weights) {
        // Only an F adds memory, over the slots it moves across; BIs and
        // BWs moved earlier cannot raise the peak.
        if (k == kFDown || k == kFUp) {
          const int top =
              *std::max_element(curve[d].level.begin() + t, curve[d].level.begin() + slot);
          if (top + 1 > limit) continue;
        }
        chosen = t;
        break;
      }
      // Without BW lanes, where the implicit BWs fall depends on every
      // free slot after t.
      s[k][mb] = t;
      if (Memory(s).peak <= limit) {
        chosen = t;
        break;
      }
    }
    s[k][mb] = chosen;
    if (with_weights && chosen != slot && k != kBIDown && k != kBIUp) curve[d] = Memory(s);
    taken[d][chosen] = 1;
  }
  if (!with_weights) {
    for (Lanes& s : stages) PlaceWeights(&s, false);
  }
  return Compact(stages);
}

}  // namespace

absl::StatusOr<Schedule> VShapeCompute(const std::string& kind, int p, int m, VShapeMemory memory,
                                       int memory_limit) {
  if (p < 1 || m < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("internal: V shape needs p >= 1 and m >= 1 (got p = ", p, ", m = ", m, ")"));
  }
  const std::vector<std::array<int, 4>> block = BuildingBlock(p, memory);
  std::vector<Lanes> stages(p, Lanes(4));
  for (int d = 0; d < p; ++d) {
    for (int k = 0; k < 4; ++k) {
      for (int mb = 0; mb < m; ++mb) {
        stages[d][k].push_back(block[d][k] + kSlotsPerMicrobatch * mb);
      }
    }
  }
  // First squeeze with the BWs placed, then again without them (the BWs
  // found room the first time; the second pass lets the cool-down's BIs
  // take it back), then the BWs go into the slots left, per chunk.
  stages = Squeeze(std::move(stages), /*with_weights=*/true, m, memory_limit);
  for (Lanes& s : stages) s.resize(4);
  stages = Squeeze(std::move(stages), /*with_weights=*/false, m, memory_limit);
  for (Lanes& s : stages) {
    s.resize(4);
    PlaceWeights(&s, /*split=*/true);
  }

  Schedule out = Skeleton(kind, p, 2, m, VPlacement(p, 2));
  for (int d = 0; d < p; ++d) {
    const int down = d, up = 2 * p - 1 - d;
    std::vector<std::tuple<int, int, int>> ops;  // slot, type, micro-batch
    for (size_t k = 0; k < stages[d].size(); ++k) {
      for (size_t mb = 0; mb < stages[d][k].size(); ++mb) {
        ops.emplace_back(stages[d][k][mb], static_cast<int>(k), static_cast<int>(mb));
      }
    }
    std::sort(ops.begin(), ops.end());
    for (const auto& [slot, k, mb] : ops) {
      switch (k) {
        case kFDown:
          out.devices[d].push_back(Action::Compute(ActionType::kF, down, mb));
          break;
        case kFUp:
          out.devices[d].push_back(Action::Compute(ActionType::kF, up, mb));
          break;
        case kBIDown:
          out.devices[d].push_back(Action::Compute(ActionType::kBI, up, mb));
          break;
        case kBIUp:
          out.devices[d].push_back(Action::Compute(ActionType::kBI, down, mb));
          break;
        case kW:
          out.devices[d].push_back(Action::Compute(ActionType::kBW, up, mb));
          break;
        default:
          out.devices[d].push_back(Action::Compute(ActionType::kBW, down, mb));
          break;
      }
    }
  }
  return out;
}

}  // namespace chronos::internal
