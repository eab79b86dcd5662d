#include "core/memory_passes.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace chronos {

PolicyTable UniformPolicy(const Schedule& s, const MemoryPolicy& p) {
  return PolicyTable(s.num_chunks(), std::vector<MemoryPolicy>(s.num_microbatches, p));
}

namespace {

bool IsMemoryAction(ActionType t) {
  return t == ActionType::kOffload || t == ActionType::kReload || t == ActionType::kRecompute ||
         t == ActionType::kAllReduce || t == ActionType::kOptimStep;
}

double ComputeSeconds(const Action& a, const CostModel& costs, const PolicyTable& pol) {
  if (a.chunk < 0) return 0;
  const ChunkCost& cc = costs.chunk(a.chunk);
  switch (a.type) {
    case ActionType::kF:
      return cc.forward_seconds;
    case ActionType::kB:
      return cc.backward_seconds;
    case ActionType::kBI:
      return cc.backward_input_seconds;
    case ActionType::kBW:
      return cc.backward_weight_seconds;
    case ActionType::kRecompute:
      return costs.RecomputeSeconds(a.chunk, SaveModeOf(pol[a.chunk][a.microbatch]));
    default:
      return 0;
  }
}

}  // namespace

absl::Status ApplyMemoryPolicy(Schedule* s, const PolicyTable& policy, const CostModel& costs,
                               const MemoryPassOptions& options) {
  const int C = s->num_chunks(), m = s->num_microbatches;
  if (static_cast<int>(policy.size()) != C) {
    return absl::InvalidArgumentError("policy table does not match the chunk count");
  }
  for (const auto& row : policy) {
    if (static_cast<int>(row.size()) != m) {
      return absl::InvalidArgumentError("policy table does not match the micro-batch count");
    }
  }
  PolicyTable table = policy;
  for (int c = 0; c < C; ++c) {
    for (int mb = 0; mb < m; ++mb) {
      MemoryPolicy& pol = table[c][mb];
      if (pol.kind != PolicyKind::kOffload) continue;
      const double f = pol.offload_fraction;
      if (!(f >= 0 && f <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat("policy of chunk ", c, ", micro-batch ", mb,
                                                       ": offload fraction ", f,
                                                       " is not in [0, 1]"));
      }
      // Offloading nothing is keeping: no copies to schedule.
      if (f == 0) pol = MemoryPolicy::Keep();
    }
  }
  for (int d = 0; d < s->num_devices; ++d) {
    std::vector<Action> base;
    for (const Action& a : s->devices[d]) {
      if (!IsMemoryAction(a.type)) base.push_back(a);
    }
    // Pass 1: policies, OFFLOAD after F, RECOMPUTE before the backward.
    std::vector<Action> out;
    for (Action a : base) {
      if (a.type == ActionType::kF) {
        a.policy = table[a.chunk][a.microbatch];
        out.push_back(a);
        if (a.policy.kind == PolicyKind::kOffload) {
          Action o = Action::Compute(ActionType::kOffload, a.chunk, a.microbatch);
          o.policy = a.policy;
          out.push_back(o);
        }
        continue;
      }
      if (IsBackward(a.type) && table[a.chunk][a.microbatch].kind == PolicyKind::kRecompute) {
        Action r = Action::Compute(ActionType::kRecompute, a.chunk, a.microbatch);
        r.policy = table[a.chunk][a.microbatch];
        out.push_back(r);
      }
      out.push_back(a);
    }
    // Pass 2: RELOADs, walking back from each offloaded backward over
    // compute actions until they cover the copy time.
    std::map<std::pair<int, int>, int> offload_at;
    std::vector<std::vector<Action>> before(out.size() + 1);
    for (int i = 0; i < static_cast<int>(out.size()); ++i) {
      const Action& a = out[i];
      if (a.type == ActionType::kOffload) offload_at[{a.chunk, a.microbatch}] = i;
      if (!IsBackward(a.type)) continue;
      const MemoryPolicy& pol = table[a.chunk][a.microbatch];
      if (pol.kind != PolicyKind::kOffload) continue;
      const int64_t bytes = costs.OffloadBytes(a.chunk, SaveMode::kAll, pol.offload_fraction);
      const double need = options.reload_lead * costs.H2DSeconds(bytes);
      const int floor = offload_at[{a.chunk, a.microbatch}] + 1;
      int at = i;
      double covered = 0;
      while (at > floor && covered < need) {
        --at;
        covered += ComputeSeconds(out[at], costs, policy);
      }
      Action r = Action::Compute(ActionType::kReload, a.chunk, a.microbatch);
      r.policy = pol;
      before[at].push_back(r);
    }
    std::vector<Action> with_reload;
    for (size_t i = 0; i < out.size(); ++i) {
      for (const Action& r : before[i]) with_reload.push_back(r);
      with_reload.push_back(out[i]);
    }
    // Pass 3: data-parallel all-reduce after each chunk's last backward.
    if (options.data_parallel > 1) {
      std::map<int, int> last;  // chunk -> index of its last backward work
      for (int i = 0; i < static_cast<int>(with_reload.size()); ++i) {
        const Action& a = with_reload[i];
        if (IsBackward(a.type) || a.type == ActionType::kBW) last[a.chunk] = i;
      }
      std::vector<Action> with_ar;
      for (int i = 0; i < static_cast<int>(with_reload.size()); ++i) {
        with_ar.push_back(with_reload[i]);
        for (const auto& [c, idx] : last) {
          if (idx == i) with_ar.push_back(Action::Compute(ActionType::kAllReduce, c, -1));
        }
      }
      with_reload = std::move(with_ar);
    }
    with_reload.push_back(Action::Compute(ActionType::kOptimStep, -1, -1));
    s->devices[d] = std::move(with_reload);
  }
  return absl::OkStatus();
}

}  // namespace chronos
