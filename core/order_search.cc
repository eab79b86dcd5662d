#include "core/order_search.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chronos {
namespace {

enum OpType : uint8_t { kOpF, kOpBI, kOpBW, kOpB };

struct Op {
  OpType type;
  int32_t chunk;
  int32_t mb;
};

struct Replayed {
  bool ok = false;
  double pipeline = 0;
  double mean_end = 0;  // a gentler slope than the makespan's plateaus
  int64_t worst = 0;
};

// The replay behind ReplayOrders and every search step; buffers are kept
// between calls because the search replays millions of times.
class Replayer {
 public:
  Replayer(const Schedule& s, const ChunkCosts& costs)
      : p_(s.num_devices),
        c_(s.num_chunks()),
        m_(s.num_microbatches),
        dev_(s.chunk_device),
        costs_(costs),
        link_free_(static_cast<size_t>(p_) * p_),
        peaks_(p_) {}

  Replayed Run(const std::vector<std::vector<Op>>& ord) {
    const size_t n = static_cast<size_t>(c_) * m_;
    f_end_.assign(n, -1);
    b_end_.assign(n, -1);
    act_at_.assign(n, -1);
    grad_at_.assign(n, -1);
    std::fill(link_free_.begin(), link_free_.end(), 0.0);
    pc_.assign(p_, 0);
    free_.assign(p_, 0.0);
    mem_.assign(p_, 0);
    std::fill(peaks_.begin(), peaks_.end(), 0);
    size_t total = 0, done = 0;
    for (const auto& o : ord) total += o.size();
    double pipeline = 0, sum_end = 0;
    for (bool progress = true; progress;) {
      progress = false;
      for (int d = 0; d < p_; ++d) {
        while (pc_[d] < ord[d].size()) {
          const Op& o = ord[d][pc_[d]];
          const size_t k = static_cast<size_t>(o.chunk) * m_ + o.mb;
          double ready = 0, dur = 0;
          if (o.type == kOpF) {
            if (o.chunk > 0) {
              ready = dev_[o.chunk - 1] == d ? f_end_[k - m_] : act_at_[k];
              if (ready < 0) break;
            }
            dur = costs_.forward[o.chunk];
          } else if (o.type == kOpBW) {
            ready = b_end_[k];
            if (ready < 0) break;
            dur = costs_.backward_weight[o.chunk];
          } else {
            if (f_end_[k] < 0) break;
            ready = f_end_[k];
            if (o.chunk < c_ - 1) {
              ready = dev_[o.chunk + 1] == d ? b_end_[k + m_] : grad_at_[k];
              if (ready < 0) break;
            }
            dur = costs_.backward_input[o.chunk];
            if (o.type == kOpB) {
              dur = costs_.backward.empty() ? dur + costs_.backward_weight[o.chunk]
                                            : costs_.backward[o.chunk];
            }
          }
          const double end = std::max(free_[d], ready) + dur;
          free_[d] = end;
          // A device's actions end in its order, so its memory events come
          // sorted and a running sum finds the peak.
          const int64_t kept = costs_.kept_bytes[o.chunk];
          const int64_t stash = costs_.weight_stash_bytes[o.chunk];
          switch (o.type) {
            case kOpF:
              f_end_[k] = end;
              mem_[d] += kept;
              if (o.chunk < c_ - 1 && dev_[o.chunk + 1] != d) {
                act_at_[k + m_] = Send(d, dev_[o.chunk + 1], end);
              }
              break;
            case kOpBI:
            case kOpB:
              b_end_[k] = end;
              mem_[d] += o.type == kOpBI ? stash - kept : -kept;
              if (o.chunk > 0 && dev_[o.chunk - 1] != d) {
                grad_at_[k - m_] = Send(d, dev_[o.chunk - 1], end);
              }
              pipeline = std::max(pipeline, end);
              break;
            case kOpBW:
              mem_[d] -= stash;
              pipeline = std::max(pipeline, end);
              break;
          }
          peaks_[d] = std::max(peaks_[d], mem_[d]);
          sum_end += end;
          ++pc_[d];
          ++done;
          progress = true;
        }
      }
    }
    Replayed r;
    if (done != total) return r;
    r.ok = true;
    r.pipeline = pipeline;
    r.mean_end = total > 0 ? sum_end / total : 0;
    r.worst = *std::max_element(peaks_.begin(), peaks_.end());
    return r;
  }

  const std::vector<int64_t>& peaks() const { return peaks_; }

 private:
  // One message at a time per link, in the sender's order (the simulator's
  // SEND): returns its arrival.
  double Send(int from, int to, double produced) {
    double& link = link_free_[static_cast<size_t>(from) * p_ + to];
    link = std::max(link, produced) + costs_.p2p_seconds;
    return link;
  }

  const int p_, c_, m_;
  const std::vector<int>& dev_;
  const ChunkCosts& costs_;
  std::vector<double> f_end_, b_end_, act_at_, grad_at_, link_free_, free_;
  std::vector<size_t> pc_;
  std::vector<int64_t> mem_, peaks_;
};

absl::StatusOr<std::vector<std::vector<Op>>> ComputeOrders(const Schedule& s,
                                                           const ChunkCosts& costs) {
  const size_t C = static_cast<size_t>(s.num_chunks());
  if (s.num_devices < 1 || s.num_microbatches < 1 || C == 0 ||
      s.devices.size() != static_cast<size_t>(s.num_devices)) {
    return absl::InvalidArgumentError("order search: the schedule has no shape");
  }
  for (const auto* v : {&costs.forward, &costs.backward_input, &costs.backward_weight}) {
    if (v->size() != C) {
      return absl::InvalidArgumentError(
          "order search needs the per-chunk F, BI and BW times of the cost model");
    }
  }
  if (!costs.backward.empty() && costs.backward.size() != C) {
    return absl::InvalidArgumentError("order search: per-chunk B times do not match the chunks");
  }
  if (costs.kept_bytes.size() != C || costs.weight_stash_bytes.size() != C) {
    return absl::InvalidArgumentError(
        "order search needs the per-chunk activation bytes of the cost model");
  }
  std::vector<std::vector<Op>> ord(s.num_devices);
  for (int d = 0; d < s.num_devices; ++d) {
    for (size_t i = 0; i < s.devices[d].size(); ++i) {
      const Action& a = s.devices[d][i];
      OpType t;
      switch (a.type) {
        case ActionType::kF:
          t = kOpF;
          break;
        case ActionType::kBI:
          t = kOpBI;
          break;
        case ActionType::kBW:
          t = kOpBW;
          break;
        case ActionType::kB:
          t = kOpB;
          break;
        case ActionType::kSendAct:
        case ActionType::kRecvAct:
        case ActionType::kSendGrad:
        case ActionType::kRecvGrad:
          continue;  // implied by the placement; the replay times them itself
        default:
          return absl::InvalidArgumentError(
              absl::StrCat("order search takes compute, send and receive actions only; device ", d,
                           " action ", i, " is ", ActionTypeName(a.type)));
      }
      if (a.chunk < 0 || static_cast<size_t>(a.chunk) >= C || a.microbatch < 0 ||
          a.microbatch >= s.num_microbatches || s.chunk_device[a.chunk] != d) {
        return absl::InvalidArgumentError(
            absl::StrCat("order search: device ", d, " action ", i, " names chunk ", a.chunk,
                         " micro-batch ", a.microbatch, ", which this device does not run"));
      }
      ord[d].push_back({t, a.chunk, a.microbatch});
    }
  }
  return ord;
}

OrderCost CostOf(const Replayed& r, const Replayer& rp) {
  OrderCost c;
  c.pipeline_seconds = r.pipeline;
  c.worst_activation_bytes = r.worst;
  c.device_activation_bytes = rp.peaks();
  return c;
}

Schedule WithOrders(const Schedule& s, const std::vector<std::vector<Op>>& ord) {
  Schedule out = s;
  for (size_t d = 0; d < ord.size(); ++d) {
    out.devices[d].clear();
    for (const Op& o : ord[d]) {
      const ActionType t = o.type == kOpF    ? ActionType::kF
                           : o.type == kOpBI ? ActionType::kBI
                           : o.type == kOpBW ? ActionType::kBW
                                             : ActionType::kB;
      out.devices[d].push_back(Action::Compute(t, o.chunk, o.mb));
    }
  }
  return out;
}

// Uniform in [0, 1) from the engine's bits: std::uniform_real_distribution
// differs between standard libraries, and the search must not.
double Unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

struct Searched {
  std::vector<std::vector<Op>> orders;
  OrderSearchReport report;
};

// Everything the search's result depends on, byte for byte: the search is
// pure, so equal keys mean equal results.
template <typename T>
void Append(std::string* key, const T& v) {
  key->append(reinterpret_cast<const char*>(&v), sizeof(v));
}
template <typename T>
void AppendAll(std::string* key, const std::vector<T>& v) {
  Append(key, v.size());
  if (!v.empty()) key->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string CacheKey(const Schedule& s, const std::vector<std::vector<Op>>& ord,
                     const ChunkCosts& costs, const OrderSearchOptions& o) {
  std::string key;
  Append(&key, s.num_devices);
  Append(&key, s.num_microbatches);
  AppendAll(&key, s.chunk_device);
  for (const auto& d : ord) {
    Append(&key, d.size());
    for (const Op& op : d) {  // field by field: Op has padding
      Append(&key, op.type);
      Append(&key, op.chunk);
      Append(&key, op.mb);
    }
  }
  for (const auto* v :
       {&costs.forward, &costs.backward_input, &costs.backward_weight, &costs.backward}) {
    AppendAll(&key, *v);
  }
  Append(&key, costs.p2p_seconds);
  AppendAll(&key, costs.kept_bytes);
  AppendAll(&key, costs.weight_stash_bytes);
  Append(&key, o.steps);
  Append(&key, o.activation_cap_bytes);
  Append(&key, o.seed);
  Append(&key, o.max_shift);
  return key;
}

// Steps between two polls of should_stop: a step is a replay of every
// device's order (microseconds to milliseconds), so a stop lands well within
// a second while the poll costs nothing measurable.
constexpr int64_t kStopPollSteps = 256;

absl::StatusOr<Searched> Search(const Schedule& compute_only, std::vector<std::vector<Op>> ord,
                                const ChunkCosts& costs, const OrderSearchOptions& search) {
  Replayer rp(compute_only, costs);
  Replayed cur = rp.Run(ord);
  if (!cur.ok) return absl::FailedPreconditionError("order search: the starting orders deadlock");
  const OrderCost start = CostOf(cur, rp);
  const int64_t cap = search.activation_cap_bytes > 0 ? search.activation_cap_bytes : cur.worst;
  // Scale-free settings: the temperature and the charge for bytes over the
  // cap follow the starting pipeline time and the cap, so a CPU toy and an
  // H100 model search alike. A byte over the cap costs ten pipelines per
  // cap's worth, which no gain in time can pay for.
  const double scale = std::max(cur.pipeline, 1e-12);
  const double temp0 = 3e-6 * scale;
  const double per_byte = 10.0 * scale / static_cast<double>(std::max<int64_t>(cap, 1));
  auto cost = [&](const Replayed& r) {
    const double over = static_cast<double>(std::max<int64_t>(0, r.worst - cap));
    return r.pipeline + 1e-4 * r.mean_end + per_byte * over;
  };
  double cur_cost = cost(cur);
  std::vector<std::vector<Op>> best = ord;
  Replayed best_r = cur;
  auto better = [&](const Replayed& a, const Replayed& b) {
    const bool fa = a.worst <= cap, fb = b.worst <= cap;
    if (fa != fb) return fa;
    return fa ? a.pipeline < b.pipeline : a.worst < b.worst;
  };
  std::mt19937_64 rng(search.seed);
  const int shift = std::max(1, search.max_shift);
  const int p = compute_only.num_devices;
  int64_t accepted = 0;
  for (int64_t step = 0; step < search.steps; ++step) {
    if (search.should_stop && step % kStopPollSteps == 0 && search.should_stop()) {
      return absl::CancelledError(
          absl::StrCat("order search stopped after ", step, " of ", search.steps, " steps"));
    }
    const double temp =
        temp0 * (1.0 - static_cast<double>(step) / static_cast<double>(search.steps)) + 1e-15;
    const int d = static_cast<int>(rng() % p);
    const int n = static_cast<int>(ord[d].size());
    const int i = n > 0 ? static_cast<int>(rng() % n) : 0;
    const int j =
        std::clamp(i + static_cast<int>(rng() % (2 * shift + 1)) - shift, 0, std::max(n - 1, 0));
    if (n < 2 || i == j) continue;
    auto move = [&](int from, int to) {
      if (from < to) {
        std::rotate(ord[d].begin() + from, ord[d].begin() + from + 1, ord[d].begin() + to + 1);
      } else {
        std::rotate(ord[d].begin() + to, ord[d].begin() + from, ord[d].begin() + from + 1);
      }
    };
    move(i, j);
    const Replayed r = rp.Run(ord);
    const double c = r.ok ? cost(r) : 0;
    if (r.ok && (c <= cur_cost || Unit(rng) < std::exp((cur_cost - c) / temp))) {
      cur = r;
      cur_cost = c;
      ++accepted;
      if (better(r, best_r)) {
        best = ord;
        best_r = r;
      }
    } else {
      move(j, i);
    }
  }
  Searched out;
  out.report.start = start;
  const Replayed fr = rp.Run(best);
  out.report.result = CostOf(fr, rp);
  out.report.activation_cap_bytes = cap;
  out.report.steps = search.steps;
  out.report.accepted = accepted;
  out.report.cap_met = fr.worst <= cap;
  out.orders = std::move(best);
  return out;
}

}  // namespace

absl::StatusOr<OrderCost> ReplayOrders(const Schedule& compute_only, const ChunkCosts& costs) {
  auto ord = ComputeOrders(compute_only, costs);
  if (!ord.ok()) return ord.status();
  Replayer rp(compute_only, costs);
  const Replayed r = rp.Run(*ord);
  if (!r.ok) return absl::FailedPreconditionError("the orders deadlock");
  return CostOf(r, rp);
}

absl::StatusOr<Schedule> SearchOrders(const Schedule& compute_only, const ChunkCosts& costs,
                                      const OrderSearchOptions& search, OrderSearchReport* report) {
  if (search.steps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.order_search_steps must be >= 0 (got ", search.steps, ")"));
  }
  if (search.activation_cap_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule.activation_cap must be >= 0 bytes (got ", search.activation_cap_bytes, ")"));
  }
  auto parsed = ComputeOrders(compute_only, costs);
  if (!parsed.ok()) return parsed.status();
  std::string key;
  if (search.memo != nullptr) {
    key = CacheKey(compute_only, *parsed, costs, search);
    if (std::optional<SearchedOrders> hit = search.memo->Find(key)) {
      if (report != nullptr) *report = hit->report;
      Schedule out = compute_only;
      out.devices = std::move(hit->devices);
      return out;
    }
  }
  absl::StatusOr<Searched> got = Search(compute_only, std::move(*parsed), costs, search);
  if (!got.ok()) return got.status();
  if (report != nullptr) *report = got->report;
  Schedule out = WithOrders(compute_only, got->orders);
  if (search.memo != nullptr) search.memo->Insert(key, SearchedOrders{out.devices, got->report});
  return out;
}

}  // namespace chronos
