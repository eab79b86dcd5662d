// GPipe, 1F1B, ZB-H1 and Megatron's interleaved 1F1B, as compute-only orders.
#include <algorithm>
#include <map>

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

Schedule ZeroBubbleH1Compute(int p, int m) {
  Schedule s = Skeleton("zbh1", p, 1, m, LoopedPlacement(p, 1));
  for (int d = 0; d < p; ++d) {
    auto& a = s.devices[d];
    // 1F1B's warm-up and F/BI alternation; device d runs the BW of
    // micro-batch j - d after the BI of micro-batch j. The last device thus
    // finishes its last BI p - 1 BWs early, so the final BI chain reaches
    // device 0 (p - 1) * BW sooner than in 1F1B, and each device fills the
    // wait with the BWs it held back: idle (p - 1)(F + BI - BW) per device
    // (Qi et al., ICLR 2024). Every device holds at most p micro-batches
    // from F to BW, 1F1B's peak (device 0's).
    const int warmup = std::min(p - d - 1, m);
    for (int i = 0; i < warmup; ++i) a.push_back(Action::Compute(ActionType::kF, d, i));
    int weights = 0;
    for (int j = 0; j < m; ++j) {
      if (j + warmup < m) a.push_back(Action::Compute(ActionType::kF, d, j + warmup));
      a.push_back(Action::Compute(ActionType::kBI, d, j));
      if (j - d >= 0) a.push_back(Action::Compute(ActionType::kBW, d, weights++));
    }
    while (weights < m) a.push_back(Action::Compute(ActionType::kBW, d, weights++));
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
      return Action::Compute(ActionType::kB, (v - 1 - table[i].second) * p + d, table[i].first);
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

namespace {

// A point-to-point channel (sender, receiver, gradient?) delivers messages
// in the order they were sent, so the receiver must post its receives in
// that order. Where two chunk streams share a channel (a V with more than
// two chunks per device) the consumers' order can differ from the sender's;
// each receive then moves up to just before the earliest consumer of any
// message sent after it. Receives are posted without blocking, so posting
// one earlier cannot deadlock; it only holds its buffer a little longer.
void MatchReceiveOrder(Schedule* s) {
  const int p = s->num_devices;
  for (int src = 0; src < p; ++src) {
    for (int dst = 0; dst < p; ++dst) {
      for (const bool grad : {false, true}) {
        const ActionType send = grad ? ActionType::kSendGrad : ActionType::kSendAct;
        const ActionType recv = grad ? ActionType::kRecvGrad : ActionType::kRecvAct;
        // Messages by (receiving chunk, micro-batch), in the sender's order.
        std::vector<std::pair<int, int>> sent;
        for (const Action& a : s->devices[src]) {
          if (a.type == send && a.peer == dst) {
            sent.push_back({grad ? a.chunk - 1 : a.chunk + 1, a.microbatch});
          }
        }
        if (sent.empty()) continue;
        std::vector<Action>& list = s->devices[dst];
        auto on_channel = [&](const Action& a) { return a.type == recv && a.peer == src; };
        std::vector<std::pair<int, int>> posted;
        for (const Action& a : list) {
          if (on_channel(a)) posted.push_back({a.chunk, a.microbatch});
        }
        if (posted == sent) continue;
        // Where each receive stands among the other actions.
        std::vector<Action> rest;
        std::map<std::pair<int, int>, size_t> at;
        for (const Action& a : list) {
          if (on_channel(a)) {
            at[{a.chunk, a.microbatch}] = rest.size();
          } else {
            rest.push_back(a);
          }
        }
        std::vector<size_t> q(sent.size(), rest.size());
        for (size_t i = sent.size(); i-- > 0;) {
          auto it = at.find(sent[i]);
          const size_t own = it == at.end() ? rest.size() : it->second;
          q[i] = std::min(own, i + 1 < sent.size() ? q[i + 1] : rest.size());
        }
        std::vector<Action> out;
        size_t i = 0;
        for (size_t k = 0; k <= rest.size(); ++k) {
          for (; i < sent.size() && q[i] == k; ++i) {
            out.push_back(Action::Comm(recv, sent[i].first, sent[i].second, src));
          }
          if (k < rest.size()) out.push_back(rest[k]);
        }
        list = std::move(out);
      }
    }
  }
}

}  // namespace

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
  MatchReceiveOrder(s);
}

}  // namespace chronos::internal
