#include "core/planner.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/device_profile.h"
#include "core/generate.h"
#include "core/idle_recompute.h"
#include "core/job_spec_validation.h"
#include "core/order_search.h"
#include "core/size.h"
#include "core/status_macros.h"
#include "core/validator.h"

namespace chronos {
namespace {

// Everything one planning attempt needs, for one schedule candidate.
struct Attempt {
  Schedule base;  // compute + communication
  PolicyTable policy;
  std::vector<double> optimizer_offload;
  Schedule final;
  SimResult sim;
  bool fits = false;
  std::vector<v1::PlanDecision> decisions;
  std::string why;  // when it does not fit
};

const char* RecomputeName(v1::RecomputeMode m) {
  switch (m) {
    case v1::RECOMPUTE_OFF:
      return "off";
    case v1::RECOMPUTE_FULL:
      return "full";
    case v1::RECOMPUTE_SELECTIVE:
      return "selective";
    case v1::RECOMPUTE_CHUNK:
      return "chunk";
    default:
      return "auto";
  }
}

class PolicyPlanner {
 public:
  PolicyPlanner(const CostModel& costs, const v1::MemorySpec& memory, int64_t budget,
                int64_t activation_budget, int data_parallel, bool record_decisions,
                const std::function<bool()>& should_stop)
      : costs_(costs),
        memory_(memory),
        budget_(budget),
        activation_budget_(activation_budget),
        dp_(data_parallel),
        record_(record_decisions),
        should_stop_(should_stop) {}

  struct Cand {
    int chunk, mb;
    int64_t bytes;
    double life;
  };

  absl::Status Plan(Attempt* a) {
    const Schedule& s = a->base;
    const int C = s.num_chunks(), m = s.num_microbatches, p = s.num_devices;
    MemoryPolicy base = MemoryPolicy::Keep();
    switch (memory_.recompute()) {
      case v1::RECOMPUTE_FULL:
        base = MemoryPolicy::Recompute(Granularity::kLayer);
        break;
      case v1::RECOMPUTE_SELECTIVE:
        base = MemoryPolicy::Recompute(Granularity::kSelective);
        break;
      case v1::RECOMPUTE_CHUNK:
        base = MemoryPolicy::Recompute(Granularity::kChunk);
        break;
      default:
        break;
    }
    const bool fixed_ratio = memory_.has_offload_ratio();
    if (fixed_ratio && memory_.offload_ratio() > 0 && base.kind == PolicyKind::kKeep) {
      base = MemoryPolicy::Offload(memory_.offload_ratio());
    }
    a->policy = UniformPolicy(s, base);
    const bool async = costs_.profile().async_copies();
    const bool opt_auto = memory_.optimizer_offload() == v1::OPTIMIZER_OFFLOAD_AUTO && async;
    a->optimizer_offload.assign(
        p, memory_.optimizer_offload() == v1::OPTIMIZER_OFFLOAD_ON ? 1.0 : 0.0);
    const bool recompute_auto = memory_.recompute() == v1::RECOMPUTE_AUTO;
    const bool offload_auto = !fixed_ratio && async;

    const int max_rounds = 4 * C * m + 4 * p + 16;
    for (int round = 0; round < max_rounds; ++round) {
      if (should_stop_ && should_stop_()) {
        return absl::CancelledError(
            absl::StrCat("memory planning stopped after ", round, " rounds"));
      }
      CHRONOS_RETURN_IF_ERROR(Evaluate(a));
      // Relieve every device over budget in one round (each from its own
      // peak), then replay: far fewer replays than one device at a time.
      int worst = -1;
      int64_t worst_over = 0;
      bool relieved = false;
      for (int d = 0; d < p; ++d) {
        const DeviceSimResult& dr = a->sim.devices[d];
        int64_t over = dr.peak_bytes - budget_;
        double at = dr.peak_time;
        if (activation_budget_ > 0 && dr.peak_activation_bytes - activation_budget_ > over) {
          // Relieve the activations' own peak, which the optimizer step's
          // (the device total's) need not coincide with.
          over = dr.peak_activation_bytes - activation_budget_;
          at = dr.peak_activation_time;
        }
        if (over <= 0) continue;
        if (over > worst_over) {
          worst_over = over;
          worst = d;
        }
        relieved |= Relieve(a, d, at, over, recompute_auto, offload_auto, opt_auto);
      }
      if (worst < 0) {
        a->fits = true;
        return absl::OkStatus();
      }
      if (!relieved) {
        const auto& dr = a->sim.devices[worst];
        a->why = absl::StrCat(
            "device ", worst, " needs ", FormatBytes(dr.peak_bytes), " (weights ",
            FormatBytes(dr.at_peak.weights), ", gradients ", FormatBytes(dr.at_peak.gradients),
            ", optimizer ", FormatBytes(dr.at_peak.optimizer), ", activations ",
            FormatBytes(dr.at_peak.activations), ") but the budget is ", FormatBytes(budget_),
            activation_budget_ > 0 ? absl::StrCat(" (activations ", FormatBytes(activation_budget_),
                                                  ", memory.activation_budget)")
                                   : "",
            " and nothing more can be evicted");
        return absl::OkStatus();
      }
    }
    a->why = "planner gave up after too many rounds";
    return absl::OkStatus();
  }

  absl::Status Evaluate(Attempt* a) const {
    a->final = a->base;
    MemoryPassOptions mo;
    mo.data_parallel = dp_;
    CHRONOS_RETURN_IF_ERROR(ApplyMemoryPolicy(&a->final, a->policy, costs_, mo));
    SimOptions so;
    so.data_parallel = dp_;
    so.optimizer_offload = a->optimizer_offload;
    so.hbm_budget = budget_;
    so.record_timeline = false;
    CHRONOS_ASSIGN_OR_RETURN(a->sim, Simulate(a->final, costs_, so));
    return absl::OkStatus();
  }

 private:
  // One eviction step on device d; false when nothing is left to try.
  bool Relieve(Attempt* a, int d, double t, int64_t over, bool recompute_auto, bool offload_auto,
               bool opt_auto) {
    const DeviceSimResult& dr = a->sim.devices[d];
    // Activations alive at the peak, largest bytes x lifetime first.
    std::vector<Cand> live, resident_offloaded;
    for (const ActivationLife& al : a->sim.activations) {
      if (al.device != d || al.f_end > t || al.backward_start <= t) continue;
      const MemoryPolicy& pol = a->policy[al.chunk][al.microbatch];
      if (pol.kind == PolicyKind::kRecompute) continue;
      // Offloaded activations are not resident between their copy out and
      // their copy back; one still resident at the peak (the host link is
      // saturated, or the backward comes too soon) is recomputed, but only
      // when nothing else is left. A fixed ratio is the user's, and only
      // recomputation may replace it.
      if (pol.kind == PolicyKind::kOffload && (offload_auto || !recompute_auto)) {
        if (recompute_auto && offload_auto && (t < al.offload_end || t >= al.reload_start)) {
          resident_offloaded.push_back(
              {al.chunk, al.microbatch, al.bytes, al.backward_start - al.f_end});
        }
        continue;
      }
      live.push_back({al.chunk, al.microbatch, al.bytes, al.backward_start - al.f_end});
    }
    std::sort(live.begin(), live.end(), [](const Cand& x, const Cand& y) {
      return static_cast<double>(x.bytes) * x.life > static_cast<double>(y.bytes) * y.life;
    });

    // Optimizer state first when it is cheaper per byte than recomputing the
    // activations that would otherwise go.
    const double opt_frac = a->optimizer_offload[d];
    int64_t opt_bytes = 0;
    for (int c : a->base.DeviceChunks(d)) opt_bytes += costs_.chunk(c).optimizer_bytes;
    double best_recompute_cost = 1e300;  // seconds per byte
    for (const Cand& c : live) {
      if (!recompute_auto) break;
      const int64_t saved = c.bytes - costs_.KeptBytes(c.chunk, SaveMode::kLayer);
      if (saved > 0) {
        best_recompute_cost = std::min(best_recompute_cost,
                                       costs_.RecomputeSeconds(c.chunk, SaveMode::kLayer) / saved);
      }
    }
    const bool hidden_offload_available =
        offload_auto && std::any_of(live.begin(), live.end(), [&](const Cand& c) {
          return Hides(c) && a->policy[c.chunk][c.mb].kind == PolicyKind::kKeep;
        });
    if (opt_auto && opt_frac < 1.0 && !hidden_offload_available) {
      // Offload just enough state (in steps of 1/8) to cover the overflow.
      const double need = static_cast<double>(over) / std::max<int64_t>(opt_bytes, 1);
      const double step =
          std::min(1.0, std::max(opt_frac + 0.125, std::ceil((opt_frac + need) * 8) / 8));
      // Streaming hides in the drain after the device's last F; only the
      // rest is added time.
      const double drain = std::max(0.0, a->sim.pipeline_seconds - dr.last_forward_end);
      const double stream =
          (step - opt_frac) * static_cast<double>(opt_bytes) / costs_.profile().h2d_bandwidth();
      const double added = std::max(1e-6, stream - drain);
      const double saved = (step - opt_frac) * static_cast<double>(opt_bytes);
      if (live.empty() || !recompute_auto || added / saved <= best_recompute_cost) {
        a->optimizer_offload[d] = step;
        Record(d, -1, -1, "optimizer_offload", step, static_cast<int64_t>(saved), 0,
               absl::StrFormat("optimizer state is touched once per iteration; streaming it "
                               "during the drain exposes ~%.3fs, cheaper than recomputing",
                               added));
        return true;
      }
    }

    // Evict activations until the overflow is covered.
    int64_t covered = 0;
    bool changed = false;
    // Keeps only each layer's input (nothing to do where that saves nothing).
    auto recompute = [&](const Cand& c, const char* reason) {
      const int64_t saved = c.bytes - costs_.KeptBytes(c.chunk, SaveMode::kLayer);
      if (saved <= 0) return;
      a->policy[c.chunk][c.mb] = MemoryPolicy::Recompute(Granularity::kLayer);
      covered += saved;
      changed = true;
      Record(d, c.chunk, c.mb, "recompute", 0, saved, c.life, reason);
    };
    for (const Cand& c : live) {
      if (covered >= over) break;
      MemoryPolicy& pol = a->policy[c.chunk][c.mb];
      if (offload_auto && pol.kind == PolicyKind::kKeep && Hides(c)) {
        pol = MemoryPolicy::Offload(1.0);
        covered += c.bytes;
        changed = true;
        Record(d, c.chunk, c.mb, "offload", 1.0, c.bytes, c.life,
               "round trip to host memory hides inside the activation's lifetime");
        continue;
      }
      if (recompute_auto) {
        recompute(c, offload_auto ? "offload would not hide within the lifetime; recompute"
                                  : "recompute (offload not available or fixed)");
      }
    }
    if (changed) return true;
    if (opt_auto && opt_frac < 1.0) {
      a->optimizer_offload[d] = std::min(1.0, opt_frac + 0.125);
      Record(d, -1, -1, "optimizer_offload", a->optimizer_offload[d], 0, 0,
             "nothing else left to evict");
      return true;
    }
    std::sort(resident_offloaded.begin(), resident_offloaded.end(),
              [](const Cand& x, const Cand& y) { return x.bytes > y.bytes; });
    for (const Cand& c : resident_offloaded) {
      if (covered >= over) break;
      recompute(c, "offloaded, but still resident at the peak: the host link is saturated");
    }
    return changed;
  }

  bool Hides(const Cand& c) const {
    const int64_t bytes = c.bytes;
    const double round_trip = costs_.D2HSeconds(bytes) + costs_.H2DSeconds(bytes);
    // Margin for the reload's lead and for sharing the link with neighbours.
    return c.life >= 2.0 * round_trip;
  }

  void Record(int d, int chunk, int mb, const char* action, double fraction, int64_t bytes,
              double life, const std::string& reason) {
    if (!record_) return;
    v1::PlanDecision pd;
    pd.set_device(d);
    pd.set_chunk(chunk);
    pd.set_microbatch(mb);
    pd.set_action(action);
    pd.set_fraction(fraction);
    pd.set_bytes(bytes);
    pd.set_lifetime_seconds(life);
    pd.set_reason(reason);
    decisions_.push_back(std::move(pd));
  }

 public:
  std::vector<v1::PlanDecision> decisions_;

 private:
  const CostModel& costs_;
  const v1::MemorySpec& memory_;
  const int64_t budget_;
  const int64_t activation_budget_;  // 0 = none
  const int dp_;
  const bool record_;
  const std::function<bool()>& should_stop_;
};

void FillReport(const v1::JobSpec& spec, const PlannedSchedule& ps, const Attempt& a,
                v1::SchedulePlan* r) {
  const Schedule& s = ps.schedule;
  const CostModel& costs = *ps.costs;
  const int d = std::max(1, spec.parallel().data());
  const double tokens = static_cast<double>(s.num_microbatches) * costs.shape().tokens() * d;
  const double iter = a.sim.iteration_seconds;
  r->set_schedule(ps.variant.name);
  r->set_bubble_ratio(a.sim.bubble_ratio);
  r->set_iteration_seconds(iter);
  r->set_tokens_per_second(iter > 0 ? tokens / iter : 0);
  const double flops = costs.ModelFlopsPerMicrobatch() * s.num_microbatches * d;
  r->set_mfu(iter > 0 ? flops / (iter * s.num_devices * d * costs.profile().peak_flops()) : 0);
  r->set_fits(a.fits);
  r->set_layers(static_cast<int>(costs.shape().layers));
  r->set_chunks_per_device(s.chunks_per_device);
  r->set_num_microbatches(s.num_microbatches);
  r->set_num_devices(s.num_devices);
  r->set_inflight_cap(spec.schedule().inflight_cap());
  r->set_recompute(RecomputeName(ps.variant.memory.recompute()));
  if (ps.variant.memory.has_offload_ratio())
    r->set_offload_ratio(ps.variant.memory.offload_ratio());
  if (!a.fits) r->set_error(a.why);
  int keep = 0, off = 0, rec = 0;
  std::map<int, std::array<int, 3>> per_device;
  for (int c = 0; c < s.num_chunks(); ++c) {
    for (int mb = 0; mb < s.num_microbatches; ++mb) {
      const MemoryPolicy& p = a.policy[c][mb];
      auto& cnt = per_device[s.chunk_device[c]];
      const int k = static_cast<int>(p.kind);
      cnt[k]++;
      (p.kind == PolicyKind::kKeep ? keep : p.kind == PolicyKind::kOffload ? off : rec)++;
    }
  }
  bool any_opt = false;
  for (int dev = 0; dev < s.num_devices; ++dev) {
    const DeviceSimResult& dr = a.sim.devices[dev];
    v1::DevicePlan* dp = r->add_devices();
    dp->set_device(dev);
    dp->set_peak_bytes(dr.peak_bytes);
    dp->set_peak_activation_bytes(dr.peak_activation_bytes);
    dp->set_weight_bytes(dr.at_peak.weights);
    dp->set_gradient_bytes(dr.at_peak.gradients);
    dp->set_optimizer_bytes(dr.at_peak.optimizer);
    dp->set_offloaded_bytes(dr.peak_offloaded_bytes);
    dp->set_recompute_seconds(dr.recompute_seconds);
    dp->set_buffer_bytes(dr.peak_buffer_bytes);
    dp->set_optimizer_host_bytes(dr.optimizer_host_bytes);
    dp->set_budget_bytes(ps.budget_bytes);
    dp->set_fits(dr.peak_bytes <= ps.budget_bytes);
    dp->set_keep_count(per_device[dev][0]);
    dp->set_offload_count(per_device[dev][1]);
    dp->set_recompute_count(per_device[dev][2]);
    dp->set_busy_seconds(dr.busy_seconds);
    dp->set_exposed_copy_seconds(dr.copy_wait_seconds);
    dp->set_max_inflight(dr.max_inflight);
    any_opt = any_opt || dr.optimizer_host_bytes > 0;
  }
  r->set_optimizer_offload(any_opt);
  r->set_policy(absl::StrFormat("keep %d, offload %d, recompute %d%s", keep, off, rec,
                                any_opt ? ", optimizer state partly in host memory" : ""));
  for (const auto& dec : a.decisions) *r->add_decisions() = dec;
}

// fn(0) .. fn(n - 1), each once, on up to one thread per core (the caller's
// among them). Planning is pure, so its independent pieces share nothing.
template <typename Fn>
void ForEachOnAllCores(size_t n, Fn fn) {
  const size_t workers = std::min<size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0};
  auto drain = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) pool.emplace_back(drain);
  drain();
  for (std::thread& t : pool) t.join();
}

// What 1F1B's worst device holds with everything kept, for this model on p
// devices with m micro-batches: the reference of relative sizes ("0.5x").
absl::StatusOr<int64_t> OneFOneBActivationBytes(const ModelShape& shape,
                                                const v1::DeviceProfile& profile, int p, int m) {
  CHRONOS_ASSIGN_OR_RETURN(std::vector<int> layers, PartitionLayers(shape, p, {}));
  CostModel costs(shape, profile, layers);
  ShapeSpec s = ScheduleShape("1f1b", p, 1, m, costs);
  CHRONOS_ASSIGN_OR_RETURN(Schedule order, GenerateSchedule(s));
  CHRONOS_ASSIGN_OR_RETURN(OrderCost oc, ReplayOrders(order, s.costs));
  return oc.worst_activation_bytes;
}

// Orders worth comparing under a budget. For chronos: the cost-aware block
// (least bubble of the periodic layouts), the same with BWs that may be
// glued behind their BIs (so the real period stays near T), the same with
// a gap kept for every BW (slot_weights: the steady state runs at T even
// on circles with no slack, at more activations in flight; at large models
// under a budget usually the fastest), the unit-cost block (V-Min-like,
// least memory), the same with weight gradients finished first,
// list-scheduled orders with p and p + 2 micro-batches in flight (lower
// bubble than any block at more memory, which the policy planner then
// offloads or recomputes), and the list order with per-device round-trip
// caps (between the two: its 1F1B-like steady state keeps the host link
// busy with offloads). With two chunks per device, also the building-block
// V orders (core/v_shape_schedule.cc): V-Min's and V-Half's lifespans, the
// published front, and V-Half's squeezed under more memory, points between
// V-Half and V-ZB. A cap given in the spec is honoured by every candidate
// (the V blocks, which have no in-flight cap, are left out then).
using Candidate = OrderCandidateTuning;

}  // namespace

std::vector<OrderCandidateTuning> ScheduleCandidates(const std::string& kind, int p, int v,
                                                     int spec_cap) {
  std::vector<Candidate> out(1);
  out[0].inflight_cap = spec_cap;
  if (kind == "chronos" && v == 2 && spec_cap == 0) {
    // The building-block V with V-Min's and V-Half's lifespans, and V-Half's
    // squeezed under more memory (3p/2 and 2p chunk activations, the
    // latter 1F1B's): the published front and points past it.
    for (int block : {1, 2}) {
      Candidate c;
      c.tuning.v_block = block;
      out.push_back(c);
    }
    for (int limit : {3 * p / 2, 2 * p}) {
      Candidate c;
      c.tuning.v_block = 2;
      c.tuning.squeeze_limit = limit;
      out.push_back(c);
    }
  }
  if (kind == "chronos") {
    Candidate glued = out[0];
    glued.tuning.glue_weights = true;
    out.push_back(glued);
    glued.tuning.slot_weights = true;
    out.push_back(glued);
    Candidate u;
    u.inflight_cap = spec_cap;
    u.tuning.uniform_costs = true;
    out.push_back(u);
    u.tuning.weights_first = true;
    out.push_back(u);
    Candidate g;
    g.tuning.greedy = true;
    if (spec_cap > 0) {
      g.inflight_cap = spec_cap;
      out.push_back(g);
    } else {
      for (int cap : {p, p + 2}) {
        g.inflight_cap = cap;
        out.push_back(g);
      }
      g.inflight_cap = 0;
      g.tuning.round_trip_caps = true;
      out.push_back(g);
    }
  }
  return out;
}

std::string DescribeOrder(const std::string& kind, const OrderCandidateTuning& cand) {
  const BlockTuning& t = cand.tuning;
  if (kind != "chronos") return kind;
  std::string out;
  if (t.v_block > 0) {
    out = absl::StrCat("building-block V, ", t.v_block == 1 ? "V-Min" : "V-Half", " lifespans");
    if (t.squeeze_limit > 0) {
      absl::StrAppend(&out, ", squeezed under ", t.squeeze_limit, " chunk activations");
    }
  } else if (t.greedy) {
    out = "list";
    if (t.round_trip_caps) absl::StrAppend(&out, ", round-trip caps");
  } else {
    out = "periodic block";
    if (t.uniform_costs) absl::StrAppend(&out, ", unit-cost layout");
    if (t.slot_weights) {
      absl::StrAppend(&out, ", slotted BWs");
    } else if (t.glue_weights) {
      absl::StrAppend(&out, ", glued BWs");
    }
    if (t.weights_first) absl::StrAppend(&out, ", weights first");
  }
  if (cand.inflight_cap > 0) absl::StrAppend(&out, ", in-flight cap ", cand.inflight_cap);
  return out;
}

absl::StatusOr<ScheduleVariant> ParseVariant(const std::string& name,
                                             const v1::MemorySpec& job_memory) {
  ScheduleVariant v;
  std::vector<std::string> parts = absl::StrSplit(name, '+');
  v.kind = CanonicalScheduleKind(parts[0]);
  parts[0] = v.kind;
  for (size_t i = 1; i < parts.size(); ++i) absl::AsciiStrToLower(&parts[i]);
  v.name = absl::StrJoin(parts, "+");
  if (!IsKnownScheduleKind(v.kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule '", name, "': unknown kind '", v.kind,
                     "'; known: ", absl::StrJoin(ScheduleKinds(), ", "),
                     " (optionally +plain, +recompute, +selective, +offload)"));
  }
  v.memory = job_memory;
  if (parts.size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat("schedule '", name, "': one modifier at most"));
  }
  if (parts.size() == 2) {
    const std::string& mod = parts[1];
    v.memory.set_optimizer_offload(v1::OPTIMIZER_OFFLOAD_OFF);
    if (mod == "plain") {
      v.memory.set_recompute(v1::RECOMPUTE_OFF);
      v.memory.set_offload_ratio(0);
      // Everything kept is the point of +plain: it is the order's own
      // memory, which an activation budget would only refuse.
      v.memory.clear_activation_budget_bytes();
      v.memory.clear_activation_budget_ratio();
    } else if (mod == "recompute") {
      v.memory.set_recompute(v1::RECOMPUTE_FULL);
      v.memory.set_offload_ratio(0);
    } else if (mod == "selective") {
      v.memory.set_recompute(v1::RECOMPUTE_SELECTIVE);
      v.memory.set_offload_ratio(0);
    } else if (mod == "offload") {
      v.memory.set_recompute(v1::RECOMPUTE_OFF);
      v.memory.set_offload_ratio(1);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("schedule '", name, "': unknown modifier '+",
                                                     mod,
                                                     "' (plain, recompute, selective, offload)"));
    }
  }
  return v;
}

absl::StatusOr<PlannedSchedule> PlanSchedule(const v1::JobSpec& spec,
                                             const v1::DeviceProfile& profile,
                                             const std::string& variant_name,
                                             const PlanOptions& options) {
  PlannedSchedule ps;
  CHRONOS_ASSIGN_OR_RETURN(ps.variant, ParseVariant(variant_name, spec.memory()));
  const std::string& kind = ps.variant.kind;
  const bool same_kind = kind == spec.schedule().kind();
  int v = same_kind && spec.parallel().chunks_per_device() > 0 ? spec.parallel().chunks_per_device()
                                                               : DefaultChunksPerDevice(kind);
  const int p = std::max(1, spec.parallel().pipeline());
  const int m = spec.training().microbatches() > 0 ? spec.training().microbatches() : p;
  const ModelShape shape = ModelShapeFromSpec(spec, profile);
  std::vector<int> explicit_layout;
  if (same_kind) {
    explicit_layout.assign(spec.parallel().layers_per_chunk().begin(),
                           spec.parallel().layers_per_chunk().end());
  }
  CHRONOS_ASSIGN_OR_RETURN(std::vector<int> layers, PartitionLayers(shape, p * v, explicit_layout));
  ps.costs = std::make_unique<CostModel>(shape, profile, layers);
  ps.budget_bytes = options.hbm_budget_bytes > 0           ? options.hbm_budget_bytes
                    : spec.memory().hbm_budget_bytes() > 0 ? spec.memory().hbm_budget_bytes()
                                                           : DefaultHbmBudget(profile);
  ShapeSpec shape_spec = ScheduleShape(kind, p, v, m, *ps.costs);
  // Sizes given relative to 1F1B ("0.5x") are resolved against its worst
  // device for this model and shape, everything kept.
  int64_t one_f_one_b = 0;
  const bool relative =
      (same_kind && spec.schedule().activation_cap_ratio() > 0) ||
      (options.activation_budget_bytes == 0 && ps.variant.memory.activation_budget_ratio() > 0);
  if (relative) {
    CHRONOS_ASSIGN_OR_RETURN(one_f_one_b, OneFOneBActivationBytes(shape, profile, p, m));
  }
  const int64_t activation_cap =
      !same_kind ? 0
      : spec.schedule().activation_cap_ratio() > 0
          ? static_cast<int64_t>(spec.schedule().activation_cap_ratio() * one_f_one_b)
          : spec.schedule().activation_cap_bytes();
  const int64_t activation_budget =
      options.activation_budget_bytes > 0 ? options.activation_budget_bytes
      : ps.variant.memory.activation_budget_ratio() > 0
          ? static_cast<int64_t>(ps.variant.memory.activation_budget_ratio() * one_f_one_b)
          : ps.variant.memory.activation_budget_bytes();
  ps.activation_budget_bytes = activation_budget;
  if (same_kind) {
    // Candidates are searched before they are compared: the one that wins
    // before the search is not always the one that wins after it.
    shape_spec.search.steps = spec.schedule().order_search_steps();
    shape_spec.search.activation_cap_bytes = activation_cap;
    shape_spec.search.memo = options.search_memo;
  }
  shape_spec.search.should_stop = options.should_stop;
  auto stopped = [&options]() -> absl::Status {
    if (options.should_stop && options.should_stop()) {
      return absl::CancelledError("planning stopped before it finished");
    }
    return absl::OkStatus();
  };
  const int dp = std::max(1, spec.parallel().data());

  int64_t least_over = std::numeric_limits<int64_t>::max();
  std::unique_ptr<Attempt> best;
  std::string best_order;
  std::vector<v1::OrderCandidate> compared;
  const std::vector<Candidate> candidates =
      ScheduleCandidates(kind, p, v, spec.schedule().inflight_cap());
  // Generation is pure; with the order search it is also most of the
  // planning time, so searched candidates are generated side by side.
  std::vector<absl::StatusOr<Schedule>> orders(candidates.size());
  std::vector<char> searched(candidates.size(), 0);  // not vector<bool>: threads write it
  auto generate = [&](size_t i, bool search) {
    ShapeSpec sh = shape_spec;
    sh.block = candidates[i].tuning;
    sh.inflight_cap = candidates[i].inflight_cap;
    if (!search) sh.search = {};
    orders[i] = GenerateSchedule(sh);
    searched[i] = search && sh.search.steps > 0;
  };
  std::vector<size_t> to_search;
  if (shape_spec.search.steps > 0 && activation_cap > 0) {
    // Under a cap, search only the orders that already meet it: the search
    // trades memory for time easily and back hardly at all (at p = 8 no
    // order more than a fifth over the cap got under it in 3 million
    // steps), so the rest would only cost time. If none meets it, search
    // them all.
    for (size_t i = 0; i < candidates.size(); ++i) {
      generate(i, false);
      if (!orders[i].ok()) continue;
      absl::StatusOr<OrderCost> oc = ReplayOrders(*orders[i], shape_spec.costs);
      if (oc.ok() && oc->worst_activation_bytes <= activation_cap) to_search.push_back(i);
    }
    if (to_search.empty()) {
      for (size_t i = 0; i < candidates.size(); ++i) to_search.push_back(i);
    }
  } else if (shape_spec.search.steps > 0) {
    for (size_t i = 0; i < candidates.size(); ++i) to_search.push_back(i);
  } else {
    for (size_t i = 0; i < candidates.size(); ++i) generate(i, false);
  }
  ForEachOnAllCores(to_search.size(), [&](size_t k) { generate(to_search[k], true); });
  // A stopped search is no infeasible candidate: the whole plan stops.
  CHRONOS_RETURN_IF_ERROR(stopped());
  for (size_t ci = 0; ci < candidates.size(); ++ci) {
    CHRONOS_RETURN_IF_ERROR(stopped());
    const Candidate& cand = candidates[ci];
    v1::OrderCandidate row;
    row.set_order(DescribeOrder(kind, cand));
    if (searched[ci]) {
      row.set_order(
          absl::StrCat(row.order(), ", order search (", shape_spec.search.steps, " steps)"));
    }
    absl::StatusOr<Schedule>& generated = orders[ci];
    // Another candidate may be infeasible (a list order under its cap, a
    // glued block under a tight cap) where the default block is not; only
    // the first (default) candidate's error is the user's.
    if (!generated.ok() && &cand != &candidates.front()) {
      row.set_error(std::string(generated.status().message()));
      compared.push_back(std::move(row));
      continue;
    }
    CHRONOS_ASSIGN_OR_RETURN(Schedule base, std::move(generated));
    // schedule.activation_cap binds the order itself (everything kept), not
    // only the search: an order over it is not a candidate.
    CHRONOS_ASSIGN_OR_RETURN(OrderCost oc, ReplayOrders(base, shape_spec.costs));
    row.set_kept_activation_bytes(oc.worst_activation_bytes);
    if (activation_cap > 0) {
      if (oc.worst_activation_bytes > activation_cap) {
        least_over = std::min(least_over, oc.worst_activation_bytes);
        row.set_error(absl::StrCat("activation peak ", FormatBytes(oc.worst_activation_bytes),
                                   " with everything kept is over schedule.activation_cap ",
                                   FormatBytes(activation_cap)));
        compared.push_back(std::move(row));
        continue;
      }
    }
    auto a = std::make_unique<Attempt>();
    a->base = std::move(base);
    PolicyPlanner planner(*ps.costs, ps.variant.memory, ps.budget_bytes, activation_budget, dp,
                          options.include_decisions, options.should_stop);
    CHRONOS_RETURN_IF_ERROR(planner.Plan(a.get()));
    a->decisions = std::move(planner.decisions_);
    auto peak = [](const Attempt& x) {
      int64_t w = 0;
      for (const auto& dr : x.sim.devices) w = std::max(w, dr.peak_bytes);
      return w;
    };
    const bool better =
        !best || (a->fits && !best->fits) ||
        (a->fits == best->fits &&
         (a->fits ? a->sim.iteration_seconds < best->sim.iteration_seconds * (1 - 1e-9)
                  : peak(*a) < peak(*best)));
    row.set_fits(a->fits);
    row.set_bubble_ratio(a->sim.bubble_ratio);
    row.set_iteration_seconds(a->sim.iteration_seconds);
    if (!a->fits) row.set_error(a->why);
    compared.push_back(std::move(row));
    if (better) {
      best = std::move(a);
      best_order = compared.back().order();
    }
  }
  if (!best) {
    return absl::ResourceExhaustedError(
        absl::StrCat("schedule.activation_cap ", FormatBytes(activation_cap), ": no ", kind,
                     " order keeps every device's activations under it (the least peak found is ",
                     FormatBytes(least_over), "); raise the cap, schedule.order_search_steps or ",
                     "parallel.chunks_per_device"));
  }
  int moved = 0;
  const double on_demand = best->sim.iteration_seconds;
  const bool recomputes =
      std::any_of(best->policy.begin(), best->policy.end(), [](const auto& row) {
        return std::any_of(row.begin(), row.end(),
                           [](const MemoryPolicy& m) { return m.kind == PolicyKind::kRecompute; });
      });
  if (options.idle_recompute && best->fits && recomputes) {
    IdleRecomputeOptions io;
    io.sim.data_parallel = dp;
    io.sim.optimizer_offload = best->optimizer_offload;
    io.sim.hbm_budget = ps.budget_bytes;
    io.sim.record_timeline = false;
    io.hbm_budget = ps.budget_bytes;
    io.activation_budget = activation_budget;
    CHRONOS_ASSIGN_OR_RETURN(moved,
                             PlaceRecomputesInIdleTime(&best->final, &best->sim, *ps.costs, io));
  }
  CHRONOS_RETURN_IF_ERROR(ValidateSchedule(best->final));
  ps.schedule = best->final;
  ps.schedule.optimizer_offload =
      std::any_of(best->optimizer_offload.begin(), best->optimizer_offload.end(),
                  [](double f) { return f > 0; });
  ps.policy = best->policy;
  ps.optimizer_offload = best->optimizer_offload;
  ps.fits = best->fits;
  FillReport(spec, ps, *best, &ps.report);
  ps.report.set_order(best_order);
  if (moved > 0) {
    ps.report.set_recomputes_in_idle_time(moved);
    ps.report.set_on_demand_recompute_iteration_seconds(on_demand);
    // The kept order's row shows what it runs at now.
    for (v1::OrderCandidate& c : compared) {
      if (c.order() != best_order) continue;
      c.set_iteration_seconds(best->sim.iteration_seconds);
      c.set_bubble_ratio(best->sim.bubble_ratio);
    }
  }
  if (compared.size() > 1) {
    for (v1::OrderCandidate& c : compared) *ps.report.add_candidates() = std::move(c);
  }
  if (options.record_timeline) {
    SimOptions so;
    so.data_parallel = dp;
    so.optimizer_offload = best->optimizer_offload;
    so.hbm_budget = ps.budget_bytes;
    so.record_curves = true;
    CHRONOS_ASSIGN_OR_RETURN(best->sim, Simulate(best->final, *ps.costs, so));
  }
  ps.sim = std::move(best->sim);
  return ps;
}

absl::StatusOr<int> MaxLayers(const v1::JobSpec& spec, const v1::DeviceProfile& profile,
                              const std::string& variant, const PlanOptions& options,
                              PlannedSchedule* at_max) {
  CHRONOS_ASSIGN_OR_RETURN(ScheduleVariant v, ParseVariant(variant, spec.memory()));
  const bool same_kind = v.kind == spec.schedule().kind();
  const int chunks =
      std::max(1, spec.parallel().pipeline()) *
      (same_kind && spec.parallel().chunks_per_device() > 0 ? spec.parallel().chunks_per_device()
                                                            : DefaultChunksPerDevice(v.kind));
  v1::JobSpec probe = spec;
  probe.mutable_parallel()->clear_layers_per_chunk();
  PlanOptions probe_options = options;
  probe_options.record_timeline = false;
  // Fitting is monotone in the layer count; MFU is not (small models pay
  // for the embedding and head), so find the largest size that fits first,
  // then scan down to the largest one that also meets the MFU floor.
  auto plan = [&](int layers) -> absl::StatusOr<PlannedSchedule> {
    probe.mutable_model()->set_layers(layers);
    return PlanSchedule(probe, profile, variant, probe_options);
  };
  auto fits = [&](int layers) -> absl::StatusOr<bool> {
    absl::StatusOr<PlannedSchedule> ps = plan(layers);
    // Past schedule.activation_cap a size does not fit, like past the budget.
    if (ps.status().code() == absl::StatusCode::kResourceExhausted) return false;
    CHRONOS_RETURN_IF_ERROR(ps.status());
    return ps->fits;
  };
  CHRONOS_ASSIGN_OR_RETURN(bool any, fits(chunks));
  if (!any) return 0;
  // A size the job spec would refuse is no answer: search up to its limit
  // (small models on host-sized budgets would otherwise search for minutes).
  int lo = chunks, hi = std::min(chunks * 2, kMaxModelLayers);
  while (hi > lo) {
    CHRONOS_ASSIGN_OR_RETURN(bool ok, fits(hi));
    if (!ok) break;
    lo = hi;
    hi = std::min(hi * 2, kMaxModelLayers);
  }
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    CHRONOS_ASSIGN_OR_RETURN(bool ok, fits(mid));
    (ok ? lo : hi) = mid;
  }
  int best = lo;
  if (options.min_mfu > 0) {
    // MFU moves by a few percent from one size to the next (the planner's
    // evictions and the block's period are discrete choices), so a walk or
    // a bisection can stop below sizes that meet the floor; scan down one
    // size at a time from the largest that fits. A batch of sizes is planned
    // at once (one thread each, up to the machine's cores) and read in
    // descending order, so the answer is the one-at-a-time scan's.
    best = 0;
    const int batch = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    auto plan_copy = [&](int layers) -> absl::StatusOr<PlannedSchedule> {
      v1::JobSpec sized = probe;
      sized.mutable_model()->set_layers(layers);
      return PlanSchedule(sized, profile, variant, probe_options);
    };
    for (int top = lo; top >= chunks && best == 0; top -= batch) {
      const int n = std::min(batch, top - chunks + 1);
      std::vector<absl::StatusOr<PlannedSchedule>> got(n);  // each set below
      std::vector<std::thread> pool;
      for (int i = 1; i < n; ++i) pool.emplace_back([&, i] { got[i] = plan_copy(top - i); });
      got[0] = plan_copy(top);
      for (std::thread& t : pool) t.join();
      for (int i = 0; i < n; ++i) {
        if (got[i].status().code() == absl::StatusCode::kResourceExhausted) continue;
        if (!got[i].ok()) return got[i].status();
        if (got[i]->fits && got[i]->report.mfu() >= options.min_mfu) {
          best = top - i;
          break;
        }
      }
    }
    if (best == 0) return 0;
  }
  if (at_max != nullptr) {
    probe.mutable_model()->set_layers(best);
    CHRONOS_ASSIGN_OR_RETURN(*at_max, PlanSchedule(probe, profile, variant, options));
  }
  return best;
}

absl::StatusOr<v1::PlanReport> BuildPlanReport(const v1::JobSpec& spec,
                                               const std::vector<std::string>& variants,
                                               bool max_layers, const PlanOptions& options) {
  CHRONOS_ASSIGN_OR_RETURN(v1::DeviceProfile profile, ResolveDeviceProfile(spec.device()));
  v1::PlanReport report;
  report.set_profile(profile.name());
  std::vector<std::string> names = variants;
  if (names.empty()) names = ScheduleKinds();
  PlanOptions floored = options;
  if (max_layers && options.min_mfu_share > 0) {
    // "How big a model fits at 95 % of plain 1F1B's throughput": the
    // reference is 1F1B keeping everything at its own largest size.
    PlanOptions ref_options = options;
    ref_options.min_mfu = 0;
    ref_options.record_timeline = false;
    PlannedSchedule ref;
    CHRONOS_ASSIGN_OR_RETURN(int ref_layers,
                             MaxLayers(spec, profile, "1f1b+plain", ref_options, &ref));
    if (ref_layers > 0) {
      report.set_reference_mfu(ref.report.mfu());
      floored.min_mfu = std::max(options.min_mfu, options.min_mfu_share * ref.report.mfu());
    }
  }
  if (max_layers && floored.min_mfu > 0) report.set_min_mfu(floored.min_mfu);
  // Rows are independent and planning is pure, so they run at once: with
  // --max-layers each row replans at a dozen sizes or more.
  struct Row {
    absl::StatusOr<PlannedSchedule> ps = absl::UnknownError("not planned");
    absl::StatusOr<int> max_layers = 0;
    PlannedSchedule at;
  };
  std::vector<Row> rows(names.size());
  auto plan_row = [&](size_t i) {
    Row& r = rows[i];
    r.ps = PlanSchedule(spec, profile, names[i], options);
    if (r.ps.ok() && max_layers) {
      r.max_layers =
          MaxLayers(spec, profile, names[i], names[i] == "1f1b+plain" ? options : floored, &r.at);
    }
  };
  ForEachOnAllCores(names.size(), plan_row);
  for (size_t i = 0; i < names.size(); ++i) {
    Row& r = rows[i];
    v1::SchedulePlan* row = report.add_plans();
    if (!r.ps.ok()) {
      const absl::StatusCode code = r.ps.status().code();
      if (code != absl::StatusCode::kInvalidArgument &&
          code != absl::StatusCode::kResourceExhausted) {
        return r.ps.status();
      }
      row->set_schedule(names[i]);
      row->set_error(std::string(r.ps.status().message()));
      continue;
    }
    *row = r.ps->report;
    report.set_hbm_budget_bytes(r.ps->budget_bytes);
    if (max_layers) {
      CHRONOS_RETURN_IF_ERROR(r.max_layers.status());
      if (*r.max_layers > 0) {
        *row = r.at.report;  // the plan at the largest size that fits
      }
      row->set_max_layers(*r.max_layers);
    }
  }
  return report;
}

}  // namespace chronos
