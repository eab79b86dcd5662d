// chronos-bench-peers: Chronos-Pipe against the published schedules, on the
// cost model (no devices).
//  1. One front per pipeline depth, on uniform costs (F = BI = BW per chunk,
//     free links, activations counted in chunk activations as the papers
//     count them) and on the LLaMA costs of BENCHMARKS.md (h100 profile,
//     bytes): bubble against the worst device's activation peak (everything
//     kept, relative to 1F1B) for 1F1B, interleaved, ZB-H1, V-Min, V-Half, V-ZB
//     and every order Chronos-Pipe's planner compares.
//  2. HBM as a cache: Chronos-Pipe with the planner's offload and
//     recomputation, its activations in HBM capped at what V-Min holds,
//     against V-Half keeping everything, as the host link shrinks.
//  3. Recomputation in idle time against on demand, where the budget forces
//     recomputation.
// Prints tables; --json FILE writes the same figures as JSON.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/llama_spec.h"
#include "core/cost_model.h"
#include "core/device_profile.h"
#include "core/generate.h"
#include "core/memory_passes.h"
#include "core/planner.h"
#include "core/simulator.h"
#include "nlohmann/json.hpp"

namespace chronos {
namespace {

struct Options {
  std::vector<int> depths = {4, 6, 8, 16};
  int microbatches_per_stage = 4;  // m = 4p
  std::vector<double> host_links = {55e9, 25e9, 12e9};
  std::string json_path;
};

// The LLaMA job of BENCHMARKS.md, 8 layers per device, planned for the
// order alone (a budget nothing reaches).
v1::JobSpec Spec(int p, int m) {
  v1::JobSpec spec = LlamaBenchSpec(p, m, 8 * p);
  spec.mutable_memory()->set_hbm_budget_bytes(int64_t{1} << 50);
  return spec;
}

// The h100 profile, or (uniform) the cpu profile with free links.
v1::DeviceProfile Profile(bool uniform) {
  v1::DeviceProfile p = *BuiltinDeviceProfile(uniform ? "cpu" : "h100");
  if (uniform) {
    p.set_p2p_bandwidth(1e30);
    p.set_p2p_latency_seconds(0);
    p.set_kernel_overhead_seconds(0);
    p.set_allreduce_bandwidth(1e30);
  }
  return p;
}

int64_t WorstActivations(const PlannedSchedule& ps) {
  int64_t w = 0;
  for (const auto& d : ps.sim.devices) w = std::max(w, d.peak_activation_bytes);
  return w;
}

struct Point {
  std::string schedule, order;
  double bubble = 0;
  double activation = 0;  // relative to 1F1B's worst device
};

// Chunk activations alive at the worst device's peak, as the papers count
// them (each F holds one until its chunk's BW), relative to 1F1B's p
// micro-batches of one (twice as large) chunk.
double UnitActivations(const Schedule& s) {
  int worst = 0;
  for (const auto& actions : s.devices) {
    int alive = 0, peak = 0;
    for (const Action& a : actions) {
      if (a.type == ActionType::kF) ++alive;
      if (a.type == ActionType::kBW || a.type == ActionType::kB) --alive;
      peak = std::max(peak, alive);
    }
    worst = std::max(worst, peak);
  }
  const int p = s.num_devices;
  return static_cast<double>(worst) * 2 / s.chunks_per_device /
         (2.0 * std::min(p, s.num_microbatches));
}

void PrintFront(const char* costs, int p, int m, const std::vector<Point>& points,
                nlohmann::json* out) {
  std::printf("\n%s costs, p = %d, m = %d (activations relative to 1F1B's worst device)\n", costs,
              p, m);
  std::printf("  %-12s %-76s %7s %6s %s\n", "SCHEDULE", "ORDER", "BUBBLE", "ACT", "FRONT");
  for (const Point& x : points) {
    bool dominated = false;
    for (const Point& y : points) {
      dominated |= (y.bubble <= x.bubble && y.activation <= x.activation) &&
                   (y.bubble < x.bubble - 1e-9 || y.activation < x.activation - 1e-9);
    }
    std::printf("  %-12s %-76s %7.3f %5.2fx %s\n", x.schedule.c_str(), x.order.c_str(), x.bubble,
                x.activation, dominated ? "" : "*");
    out->push_back({{"costs", costs},
                    {"p", p},
                    {"m", m},
                    {"schedule", x.schedule},
                    {"order", x.order},
                    {"bubble", x.bubble},
                    {"activation_vs_1f1b", x.activation},
                    {"on_front", !dominated}});
  }
}

// F = BI = BW = 1 on every chunk, free links: the papers' setting. Memory
// in chunk activations, as they count it.
std::vector<Point> UniformFront(int p, int m) {
  std::vector<Point> points;
  v1::DeviceProfile free = Profile(true);
  auto run = [&](const std::string& kind, int v, const OrderCandidateTuning& cand,
                 const std::string& order) {
    ModelShape shape;
    shape.layers = p * v;
    shape.hidden = 64;
    shape.heads = 4;
    shape.ffn = 172;
    shape.vocab = 64;
    shape.seq_len = 32;
    CostModel cm(shape, free, std::vector<int>(p * v, 1));
    for (int c = 0; c < p * v; ++c) cm.SetChunkSeconds(c, 1, 1, 1);
    ShapeSpec sh = ScheduleShape(kind, p, v, m, cm);
    sh.block = cand.tuning;
    sh.inflight_cap = cand.inflight_cap;
    absl::StatusOr<Schedule> s = GenerateSchedule(sh);
    if (!s.ok()) return;
    Schedule keep = *s;
    if (!ApplyMemoryPolicy(&keep, UniformPolicy(keep, MemoryPolicy::Keep()), cm).ok()) return;
    absl::StatusOr<SimResult> r = Simulate(keep, cm);
    if (!r.ok()) return;
    points.push_back({kind, order, r->bubble_ratio, UnitActivations(*s)});
  };
  for (const char* kind : {"1f1b", "interleaved", "zbh1", "vmin", "vhalf", "vzb"}) {
    run(kind, DefaultChunksPerDevice(kind), {}, "");
  }
  for (const OrderCandidateTuning& c : ScheduleCandidates("chronos", p, 2, 0)) {
    run("chronos", 2, c, DescribeOrder("chronos", c));
  }
  return points;
}

nlohmann::json Fronts(const Options& o) {
  nlohmann::json out = nlohmann::json::array();
  for (int p : o.depths) {
    const int m = o.microbatches_per_stage * p;
    PrintFront("uniform", p, m, UniformFront(p, m), &out);
  }
  for (int p : o.depths) {
    const int m = o.microbatches_per_stage * p;
    const v1::JobSpec spec = Spec(p, m);
    const v1::DeviceProfile profile = Profile(false);
    absl::StatusOr<PlannedSchedule> one = PlanSchedule(spec, profile, "1f1b+plain");
    if (!one.ok()) {
      std::fprintf(stderr, "1f1b: %s\n", std::string(one.status().message()).c_str());
      continue;
    }
    const double ref = static_cast<double>(WorstActivations(*one));
    std::vector<Point> points;
    for (const char* kind : {"1f1b", "interleaved", "zbh1", "vmin", "vhalf", "vzb"}) {
      absl::StatusOr<PlannedSchedule> ps =
          PlanSchedule(spec, profile, std::string(kind) + "+plain");
      if (!ps.ok()) continue;
      points.push_back({kind, "", ps->sim.bubble_ratio, WorstActivations(*ps) / ref});
    }
    absl::StatusOr<PlannedSchedule> chronos = PlanSchedule(spec, profile, "chronos+plain");
    if (chronos.ok()) {
      for (const v1::OrderCandidate& c : chronos->report.candidates()) {
        if (!c.error().empty()) continue;
        points.push_back({"chronos", c.order(), c.bubble_ratio(), c.kept_activation_bytes() / ref});
      }
    }
    PrintFront("LLaMA", p, m, points, &out);
  }
  return out;
}

nlohmann::json HbmAsCache(const Options& o) {
  nlohmann::json out = nlohmann::json::array();
  std::printf(
      "\nChronos-Pipe + planner, activations in HBM capped at V-Min's, against V-Half keeping "
      "everything (LLaMA costs, h100, m = %dp)\n",
      o.microbatches_per_stage);
  std::printf("  %3s %9s %12s %12s %12s %12s %10s %s\n", "p", "HOST GB/s", "V-HALF ITER",
              "V-HALF ACT", "CHRONOS ITER", "CHRONOS ACT", "VS V-HALF", "ORDER");
  for (int p : {8, 16}) {
    const int m = o.microbatches_per_stage * p;
    for (double link : o.host_links) {
      v1::JobSpec spec = Spec(p, m);
      spec.mutable_memory()->set_hbm_budget_bytes(int64_t{72} << 30);
      v1::DeviceProfile profile = Profile(false);
      profile.set_h2d_bandwidth(link);
      profile.set_d2h_bandwidth(link);
      profile.set_duplex_bandwidth(std::min(profile.duplex_bandwidth(), 1.5 * link));
      absl::StatusOr<PlannedSchedule> one = PlanSchedule(spec, profile, "1f1b+plain");
      absl::StatusOr<PlannedSchedule> vmin = PlanSchedule(spec, profile, "vmin+plain");
      absl::StatusOr<PlannedSchedule> vhalf = PlanSchedule(spec, profile, "vhalf+plain");
      if (!one.ok() || !vmin.ok() || !vhalf.ok()) continue;
      const double ref = static_cast<double>(WorstActivations(*one));
      spec.mutable_memory()->set_activation_budget_bytes(WorstActivations(*vmin));
      absl::StatusOr<PlannedSchedule> chronos = PlanSchedule(spec, profile, "chronos");
      if (!chronos.ok()) continue;
      const double ratio = chronos->sim.iteration_seconds / vhalf->sim.iteration_seconds;
      std::printf("  %3d %9.0f %11.3fs %11.2fx %11.3fs %11.2fx %9.3fx %s%s\n", p, link / 1e9,
                  vhalf->sim.iteration_seconds, WorstActivations(*vhalf) / ref,
                  chronos->sim.iteration_seconds, WorstActivations(*chronos) / ref, ratio,
                  chronos->report.order().c_str(), chronos->fits ? "" : " (does not fit)");
      out.push_back({{"p", p},
                     {"m", m},
                     {"host_link_bytes_per_s", link},
                     {"vmin_activation_vs_1f1b", WorstActivations(*vmin) / ref},
                     {"vhalf_iteration_s", vhalf->sim.iteration_seconds},
                     {"vhalf_activation_vs_1f1b", WorstActivations(*vhalf) / ref},
                     {"chronos_iteration_s", chronos->sim.iteration_seconds},
                     {"chronos_activation_vs_1f1b", WorstActivations(*chronos) / ref},
                     {"chronos_fits", chronos->fits},
                     {"chronos_order", chronos->report.order()}});
    }
  }
  return out;
}

// Where the budget forces recomputation (no offload), the iteration with
// each RECOMPUTE right before its backward against the planner's placement
// in idle time (core/idle_recompute.h).
nlohmann::json IdleRecompute() {
  nlohmann::json out = nlohmann::json::array();
  std::printf(
      "\nRecomputation in idle time (LLaMA costs, h100, chronos, no activation or optimizer "
      "offload, m = 4p; budgets that fit only by recomputing)\n");
  std::printf("  %3s %7s %8s %10s %14s %12s %8s\n", "p", "LAYERS", "BUDGET", "RECOMPUTED",
              "ON DEMAND", "IDLE TIME", "MOVED");
  for (const auto& [p, layers, budget_gib] :
       {std::tuple{4, 32, 38}, std::tuple{4, 32, 36}, std::tuple{4, 32, 34}, std::tuple{8, 64, 44},
        std::tuple{8, 64, 40}, std::tuple{8, 64, 36}, std::tuple{16, 128, 44},
        std::tuple{16, 128, 40}}) {
    v1::JobSpec spec = Spec(p, 4 * p);
    spec.mutable_model()->set_layers(layers);
    spec.mutable_memory()->set_hbm_budget_bytes(int64_t{budget_gib} << 30);
    spec.mutable_memory()->set_offload_ratio(0);
    spec.mutable_memory()->set_optimizer_offload(v1::OPTIMIZER_OFFLOAD_OFF);
    const v1::DeviceProfile profile = Profile(false);
    PlanOptions on_demand;
    on_demand.idle_recompute = false;
    absl::StatusOr<PlannedSchedule> base = PlanSchedule(spec, profile, "chronos", on_demand);
    absl::StatusOr<PlannedSchedule> idle = PlanSchedule(spec, profile, "chronos");
    if (!base.ok() || !idle.ok() || !base->fits) {
      std::printf("  %3d %7d %6dGiB  does not fit\n", p, layers, budget_gib);
      continue;
    }
    int recomputed = 0;
    for (const auto& row : idle->policy) {
      for (const MemoryPolicy& m : row) recomputed += m.kind == PolicyKind::kRecompute;
    }
    std::printf("  %3d %7d %6dGiB %10d %13.3fs %11.3fs %8d\n", p, layers, budget_gib, recomputed,
                base->sim.iteration_seconds, idle->sim.iteration_seconds,
                idle->report.recomputes_in_idle_time());
    out.push_back({{"p", p},
                   {"layers", layers},
                   {"hbm_budget_gib", budget_gib},
                   {"recomputed", recomputed},
                   {"on_demand_iteration_s", base->sim.iteration_seconds},
                   {"idle_time_iteration_s", idle->sim.iteration_seconds},
                   {"moved", idle->report.recomputes_in_idle_time()}});
  }
  return out;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--json") {
      o.json_path = value();
    } else if (a == "--depths") {
      o.depths.clear();
      for (absl::string_view d : absl::StrSplit(value(), ',')) {
        int x;
        if (!absl::SimpleAtoi(d, &x) || x < 1 || x > 64) {
          std::fprintf(stderr, "--depths: '%s' is not a depth in [1, 64]\n",
                       std::string(d).c_str());
          return 2;
        }
        o.depths.push_back(x);
      }
    } else {
      std::fprintf(stderr, "usage: chronos-bench-peers [--depths 4,6,8,16] [--json FILE]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  nlohmann::json j;
  j["fronts"] = Fronts(o);
  j["hbm_as_cache"] = HbmAsCache(o);
  j["idle_recompute"] = IdleRecompute();
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    f << j.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", o.json_path.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace chronos

int main(int argc, char** argv) { return chronos::Main(argc, argv); }
