// GPipe, 1F1B and Megatron's interleaved 1F1B, as compute-only orders.
#include <algorithm>

#include "core/generators_internal.h"

namespace chronos::internal {

Schedule Skeleton(const std::string& kind, int p, int v, int m, std::vector<int> placement) {
  Schedule s;
  s.kind = kind;
  s.num_devices = p;
  s.chunks_per_device = v;
  s.num_microbatches = m;
  s.chunk_device = std::move(placement);
  s.devices.assign(p, {});
  return s;
}

std::vector<int> LoopedPlacement(int p, int v) {
  std::vector<int> out(p * v);
  for (int c = 0; c < p * v; ++c) out[c] = c % p;
  return out;
}

std::vector<int> VPlacement(int p, int v) {
  std::vector<int> out(p * v);
  for (int c = 0; c < p * v; ++c) {
    int k = c / p, pos = c % p;
    out[c] = (k % 2 == 0) ? pos : p - 1 - pos;
  }
  return out;
}

Schedule GPipeCompute(int p, int m) {
  Schedule s = Skeleton("gpipe", p, 1, m, LoopedPlacement(p, 1));
  for (int d = 0; d < p; ++d) {
    for (int mb = 0; mb < m; ++mb) s.devices[d].push_back(Action::Compute(ActionType::kF, d, mb));
    for (int mb = 0; mb < m; ++mb) s.devices[d].push_back(Action::Compute(ActionType::kB, d, mb));
  }
  return s;
}

Schedule OneFOneBCompute(int p, int m) {
  Schedule s = Skeleton("1f1b", p, 1, m, LoopedPlacement(p, 1));
  for (int d = 0; d < p; ++d) {
    auto& a = s.devices[d];
    const int warmup = std::min(p - d - 1, m);
    const int steady = m - warmup;
    for (int i = 0; i < warmup; ++i) a.push_back(Action::Compute(ActionType::kF, d, i));
    for (int i = 0; i < steady; ++i) {
      a.push_back(Action::Compute(ActionType::kF, d, warmup + i));
      a.push_back(Action::Compute(ActionType::kB, d, i));
    }
    for (int i = steady; i < m; ++i) a.push_back(Action::Compute(ActionType::kB, d, i));
  }
  return s;
}

Schedule InterleavedCompute(int p, int v, int m) {
  Schedule s = Skeleton("interleaved", p, v, m, LoopedPlacement(p, v));
  // Megatron's schedule table: groups of g micro-batches per model chunk;
  // the last group takes the remainder when p does not divide m.
  const int g = p;
  std::vector<std::pair<int, int>> table;  // (micro-batch, model chunk)
  for (int first = 0; first < m; first += g) {
    const int last = std::min(first + g, m);
    for (int k = 0; k < v; ++k) {
      for (int mb = first; mb < last; ++mb) table.push_back({mb, k});
    }
  }
  const int total = m * v;
  for (int d = 0; d < p; ++d) {
    auto& a = s.devices[d];
    auto fwd = [&](int i) {
      return Action::Compute(ActionType::kF, table[i].second * p + d, table[i].first);
    };
    auto bwd = [&](int i) {
      return Action::Compute(ActionType::kB, (v - 1 - table[i].second) * p + d,
                             table[i].first);
    };
    const int warmup = std::min((p - d - 1) * 2 + (v - 1) * g, total);
    const int steady = total - warmup;
    for (int i = 0; i < warmup; ++i) a.push_back(fwd(i));
    for (int i = 0; i < steady; ++i) {
      a.push_back(fwd(warmup + i));
      a.push_back(bwd(i));
    }
    for (int i = steady; i < total; ++i) a.push_back(bwd(i));
  }
  return s;
}

void InsertCommunication(Schedule* s) {
  const int C = s->num_chunks();
  auto dev = [&](int c) { return s->chunk_device[c]; };
  for (int d = 0; d < s->num_devices; ++d) {
    std::vector<Action> out;
    for (const Action& a : s->devices[d]) {
      const int c = a.chunk, mb = a.microbatch;
      if (a.type == ActionType::kF && c > 0 && dev(c - 1) != d) {
        out.push_back(Action::Comm(ActionType::kRecvAct, c, mb, dev(c - 1)));
      }
      if (IsBackward(a.type) && c < C - 1 && dev(c + 1) != d) {
        out.push_back(Action::Comm(ActionType::kRecvGrad, c, mb, dev(c + 1)));
      }
      out.push_back(a);
      if (a.type == ActionType::kF && c < C - 1 && dev(c + 1) != d) {
        out.push_back(Action::Comm(ActionType::kSendAct, c, mb, dev(c + 1)));
      }
      if (IsBackward(a.type) && c > 0 && dev(c - 1) != d) {
        out.push_back(Action::Comm(ActionType::kSendGrad, c, mb, dev(c - 1)));
      }
    }
    s->devices[d] = std::move(out);
  }
}

}  // namespace chronos::internal
