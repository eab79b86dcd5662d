// chronos-bench-schedules: the schedule comparison of CHRONOS.md section 8
// on the cost model (no devices). For each pipeline depth it prints, per
// schedule, the bubble ratio and iteration time with everything kept, the
// worst device's peak activation bytes (absolute and against 1F1B), and,
// with --max-layers, the largest layer count each schedule + planner fits
// in the HBM budget with the MFU there. Per depth it then prints Chronos-
// Pipe's bubble / activation-memory Pareto front (everything kept; blocks
// with and without BWs glued behind their BIs) and the
// least memory at no more bubble than 1F1B's, including the four-chunk
// unit block refined by the order search (core/order_search.h) under half
// of 1F1B's activations (--search-steps). Then it times generation +
// validation at p = 64, m = 512. Prints tables; --json FILE writes JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/llama_spec.h"
#include "core/cost_model.h"
#include "core/device_profile.h"
#include "core/generate.h"
#include "core/memory_passes.h"
#include "core/order_search.h"
#include "core/planner.h"
#include "core/simulator.h"
#include "core/status_macros.h"
#include "core/validator.h"
#include "nlohmann/json.hpp"

namespace chronos {
namespace {

struct Options {
  std::vector<int> depths = {4, 8, 16};
  int microbatches_per_stage = 4;  // m = 4p
  int layers = 64;
  int64_t budget = 80'000'000'000;  // 80 GB
  bool max_layers = false;
  double min_mfu_share = 0.95;  // of 1f1b+plain's MFU at its own maximum
  std::string json_path;
  int gen_p = 64, gen_m = 512;
  int64_t search_steps = 3'000'000;  // order search on the v=4 unit block; 0 = skip
};

v1::JobSpec LlamaSpec(const Options& o, int p, int m) {
  return LlamaBenchSpec(p, m, std::max(o.layers, 2 * p));
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Chronos-Pipe's own trade-off between bubble and activation memory, with
// every activation kept: the periodic block at a range of periods (a longer
// period leaves more free slots, so the chain waits less and activations
// live shorter; each micro-batch starts later) and the list-scheduled order
// at in-flight caps p .. p + 2. Prints the points on the Pareto front and
// the least memory at no more bubble than 1F1B's.
struct TradeoffPoint {
  std::string order;
  double bubble = 0;
  int64_t worst = 0;
};

absl::StatusOr<TradeoffPoint> KeepAllPoint(const std::string& order, const ShapeSpec& shape,
                                           const CostModel& cm) {
  CHRONOS_ASSIGN_OR_RETURN(Schedule s, GenerateSchedule(shape));
  CHRONOS_RETURN_IF_ERROR(ApplyMemoryPolicy(&s, UniformPolicy(s, MemoryPolicy::Keep()), cm));
  CHRONOS_RETURN_IF_ERROR(ValidateSchedule(s));
  SimOptions so;
  so.record_timeline = false;
  CHRONOS_ASSIGN_OR_RETURN(SimResult r, Simulate(s, cm, so));
  TradeoffPoint pt{order, r.bubble_ratio, 0};
  for (const auto& d : r.devices) pt.worst = std::max(pt.worst, d.peak_activation_bytes);
  return pt;
}

absl::Status ChronosTradeoff(const Options& o, const v1::DeviceProfile& profile, int p,
                             double bubble_1f1b, double act_1f1b, nlohmann::json* out) {
  const int m = o.microbatches_per_stage * p;
  const v1::JobSpec spec = LlamaSpec(o, p, m);
  const ModelShape shape = ModelShapeFromSpec(spec, profile);
  CHRONOS_ASSIGN_OR_RETURN(std::vector<int> layers, PartitionLayers(shape, 2 * p, {}));
  CostModel cm(shape, profile, layers);
  ShapeSpec base = ScheduleShape("chronos", p, 2, m, cm);
  std::vector<TradeoffPoint> pts;
  // block, block+glue, block+slot (glued or slotted BWs, see BlockTuning).
  for (int variant = 0; variant < 3; ++variant) {
    for (int k = 0; k <= 20; ++k) {
      ShapeSpec sh = base;
      sh.block.period_scale = 1.0 + 0.05 * k;
      sh.block.glue_weights = variant >= 1;
      sh.block.slot_weights = variant == 2;
      const char* label = variant == 0 ? "block" : variant == 1 ? "block+glue" : "block+slot";
      absl::StatusOr<TradeoffPoint> pt =
          KeepAllPoint(absl::StrFormat("%s T=%.2fx", label, sh.block.period_scale), sh, cm);
      if (pt.ok()) pts.push_back(*pt);
    }
  }
  for (int cap = p; cap <= p + 2; ++cap) {
    ShapeSpec sh = base;
    sh.block.greedy = true;
    sh.inflight_cap = cap;
    absl::StatusOr<TradeoffPoint> pt = KeepAllPoint(absl::StrCat("list cap=", cap), sh, cm);
    if (pt.ok()) pts.push_back(*pt);
  }
  {
    ShapeSpec sh = base;
    sh.block.greedy = true;
    sh.block.round_trip_caps = true;
    absl::StatusOr<TradeoffPoint> pt = KeepAllPoint("list round-trip", sh, cm);
    if (pt.ok()) pts.push_back(*pt);
  }
  {
    // Four chunks per device, laid out with unit costs: shorter chunks
    // shorten the early chunks' stay, at the price of twice the hops.
    CHRONOS_ASSIGN_OR_RETURN(std::vector<int> layers4, PartitionLayers(shape, 4 * p, {}));
    CostModel cm4(shape, profile, layers4);
    ShapeSpec base4 = ScheduleShape("chronos", p, 4, m, cm4);
    base4.block.uniform_costs = true;
    for (int k = 0; k <= 4; ++k) {
      ShapeSpec sh = base4;
      sh.block.period_scale = 1.0 + 0.05 * k;
      absl::StatusOr<TradeoffPoint> pt =
          KeepAllPoint(absl::StrFormat("v=4 unit T=%.2fx", sh.block.period_scale), sh, cm4);
      if (pt.ok()) pts.push_back(*pt);
    }
    // The same block refined by the order search under Chronos-Pipe's goal,
    // half of 1F1B's worst-device activations: the search shortens the
    // pipeline as far as that cap allows.
    if (o.search_steps > 0) {
      ShapeSpec sh = base4;
      sh.search.activation_cap_bytes = static_cast<int64_t>(0.5 * act_1f1b);
      // Start from the shortest period whose block is already under the
      // cap: the search trades memory for time far more easily than back.
      for (int k = 0; k <= 10; ++k) {
        sh.block.period_scale = 1.0 + 0.05 * k;
        absl::StatusOr<Schedule> start = GenerateSchedule(sh);
        if (!start.ok()) continue;
        absl::StatusOr<OrderCost> oc = ReplayOrders(*start, sh.costs);
        if (oc.ok() && oc->worst_activation_bytes <= sh.search.activation_cap_bytes) break;
      }
      sh.search.steps = o.search_steps;
      const auto t0 = std::chrono::steady_clock::now();
      absl::StatusOr<TradeoffPoint> pt =
          KeepAllPoint(absl::StrFormat("v=4 unit T=%.2fx+search", sh.block.period_scale), sh, cm4);
      const double secs = Seconds(t0);
      if (pt.ok()) {
        pts.push_back(*pt);
        std::printf(
            "\norder search, p=%d m=%d, from %s: %lld steps in %.1f s: bubble %.4f, "
            "%.2f GiB (%.3fx 1F1B's activations; cap 0.5x)\n",
            p, m, pt->order.c_str(), static_cast<long long>(o.search_steps), secs, pt->bubble,
            pt->worst / double(int64_t{1} << 30), pt->worst / act_1f1b);
        (*out)["order_search"].push_back({{"p", p},
                                          {"m", m},
                                          {"start_period_scale", sh.block.period_scale},
                                          {"steps", o.search_steps},
                                          {"seconds", secs},
                                          {"bubble_ratio", pt->bubble},
                                          {"worst_peak_activation_bytes", pt->worst},
                                          {"activation_vs_1f1b", pt->worst / act_1f1b}});
      } else {
        std::printf("\norder search, p=%d m=%d: %s\n", p, m, pt.status().ToString().c_str());
      }
    }
  }
  std::sort(pts.begin(), pts.end(), [](const TradeoffPoint& a, const TradeoffPoint& b) {
    return a.bubble < b.bubble || (a.bubble == b.bubble && a.worst < b.worst);
  });
  std::printf(
      "\nChronos-Pipe bubble vs activation memory, p=%d m=%d, everything kept "
      "(Pareto front; 1F1B: bubble %.4f, %.2f GiB)\n",
      p, m, bubble_1f1b, act_1f1b / double(int64_t{1} << 30));
  std::printf("  %-24s %8s %12s %9s\n", "order", "bubble", "worst-act", "vs-1f1b");
  int64_t front = std::numeric_limits<int64_t>::max();
  const TradeoffPoint* best_at_1f1b = nullptr;
  for (const TradeoffPoint& pt : pts) {
    if (pt.bubble <= bubble_1f1b && (best_at_1f1b == nullptr || pt.worst < best_at_1f1b->worst)) {
      best_at_1f1b = &pt;
    }
    if (pt.worst >= front) continue;
    front = pt.worst;
    std::printf("  %-24s %8.4f %8.2f GiB %8.3fx\n", pt.order.c_str(), pt.bubble,
                pt.worst / double(int64_t{1} << 30), pt.worst / act_1f1b);
    (*out)["chronos_tradeoff"].push_back({{"p", p},
                                          {"m", m},
                                          {"order", pt.order},
                                          {"bubble_ratio", pt.bubble},
                                          {"worst_peak_activation_bytes", pt.worst},
                                          {"activation_vs_1f1b", pt.worst / act_1f1b}});
  }
  if (best_at_1f1b != nullptr) {
    std::printf("  least memory at bubble <= 1F1B's: %s, %.3fx 1F1B's activations\n",
                best_at_1f1b->order.c_str(), best_at_1f1b->worst / act_1f1b);
  } else {
    std::printf("  no order reaches 1F1B's bubble\n");
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--max-layers") {
      o.max_layers = true;
    } else if (a == "--json") {
      o.json_path = next();
    } else if (a == "--depths") {
      o.depths.clear();
      for (absl::string_view s : absl::StrSplit(next(), ',')) {
        int v = 0;
        if (!absl::SimpleAtoi(s, &v) || v < 1) {
          std::fprintf(stderr, "error: --depths: '%s' is not a positive integer\n",
                       std::string(s).c_str());
          return 2;
        }
        o.depths.push_back(v);
      }
    } else if (a == "--microbatches-per-stage") {
      if (!absl::SimpleAtoi(next(), &o.microbatches_per_stage) || o.microbatches_per_stage < 1) {
        std::fprintf(stderr, "error: --microbatches-per-stage must be a positive integer\n");
        return 2;
      }
    } else if (a == "--layers") {
      if (!absl::SimpleAtoi(next(), &o.layers) || o.layers < 1) {
        std::fprintf(stderr, "error: --layers must be a positive integer\n");
        return 2;
      }
    } else if (a == "--search-steps") {
      if (!absl::SimpleAtoi(next(), &o.search_steps) || o.search_steps < 0) {
        std::fprintf(stderr, "error: --search-steps must be a non-negative integer\n");
        return 2;
      }
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: chronos-bench-schedules [--depths 4,8,16] [--microbatches-per-stage 4]\n"
          "         [--layers 64] [--max-layers] [--search-steps 3000000] [--json FILE]\n");
      return 0;
    } else {
      std::fprintf(stderr, "error: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  const v1::DeviceProfile profile = *BuiltinDeviceProfile("h100");
  nlohmann::json out;
  out["profile"] = "h100";
  out["model"] = {{"hidden", 4096}, {"seq_len", 4096}, {"heads", 32},
                  {"ffn", 11008},   {"vocab", 32000},  {"layers", o.layers}};
  std::printf("H100 profile, LLaMA-like layer h=4096 s=4096 f=11008, %d layers, m = %d p\n\n",
              o.layers, o.microbatches_per_stage);
  std::printf("%-4s %-5s %-12s %8s %10s %12s %9s", "p", "m", "schedule", "bubble", "iter(s)",
              "worst-act", "vs-1f1b");
  if (o.max_layers) std::printf(" %10s %7s %6s", "max-layers", "x-1f1b", "mfu");
  std::printf("\n");
  std::map<int, std::pair<double, double>> baseline;  // p -> 1F1B (bubble, worst act)
  for (int p : o.depths) {
    const int m = o.microbatches_per_stage * p;
    const v1::JobSpec spec = LlamaSpec(o, p, m);
    double act_1f1b = 0;
    int layers_plain = 0;
    double mfu_floor = 0;
    std::vector<std::string> variants = {"1f1b+plain", "gpipe+plain", "interleaved+plain",
                                         "zbh1+plain", "chronos+plain"};
    if (o.max_layers) {
      variants.push_back("1f1b+recompute");
      variants.push_back("interleaved");
      variants.push_back("zbh1");
      variants.push_back("chronos");
    }
    for (const std::string& variant : variants) {
      PlanOptions po;
      po.hbm_budget_bytes = int64_t{1} << 60;  // the keep-everything row
      po.record_timeline = false;
      const bool plain = variant.find("+plain") != std::string::npos;
      nlohmann::json row = {{"p", p}, {"m", m}, {"schedule", variant}};
      if (plain) {
        absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, profile, variant, po);
        if (!ps.ok()) {
          std::fprintf(stderr, "%s: %s\n", variant.c_str(), ps.status().ToString().c_str());
          return 1;
        }
        int64_t worst = 0;
        for (const auto& d : ps->sim.devices) worst = std::max(worst, d.peak_activation_bytes);
        if (variant == "1f1b+plain") {
          act_1f1b = static_cast<double>(worst);
          baseline[p] = {ps->sim.bubble_ratio, act_1f1b};
        }
        row["bubble_ratio"] = ps->sim.bubble_ratio;
        row["iteration_seconds"] = ps->sim.iteration_seconds;
        row["worst_peak_activation_bytes"] = worst;
        row["activation_vs_1f1b"] = worst / act_1f1b;
        std::printf("%-4d %-5d %-12s %8.4f %10.3f %9.2f GiB %8.3fx", p, m,
                    variant.substr(0, variant.find('+')).c_str(), ps->sim.bubble_ratio,
                    ps->sim.iteration_seconds, worst / double(int64_t{1} << 30), worst / act_1f1b);
      } else {
        std::printf("%-4d %-5d %-12s %8s %10s %12s %9s", p, m, variant.c_str(), "", "", "", "");
      }
      if (o.max_layers) {
        PlanOptions mo;
        mo.hbm_budget_bytes = o.budget;
        mo.record_timeline = false;
        if (variant != "1f1b+plain" && variant != "1f1b+recompute") mo.min_mfu = mfu_floor;
        PlannedSchedule at;
        const auto t0 = std::chrono::steady_clock::now();
        absl::StatusOr<int> n = MaxLayers(spec, profile, variant, mo, &at);
        if (!n.ok()) {
          std::fprintf(stderr, "%s: %s\n", variant.c_str(), n.status().ToString().c_str());
          return 1;
        }
        if (variant == "1f1b+plain") {
          layers_plain = *n;
          mfu_floor = o.min_mfu_share * at.report.mfu();
        }
        const double x = layers_plain > 0 ? *n / double(layers_plain) : 0;
        std::printf(" %10d %6.2fx %6.3f", *n, x, *n > 0 ? at.report.mfu() : 0.0);
        row["max_layers"] = *n;
        row["max_layers_vs_1f1b_plain"] = x;
        row["mfu_at_max_layers"] = *n > 0 ? at.report.mfu() : 0.0;
        row["min_mfu"] = mo.min_mfu;
        row["planning_seconds"] = Seconds(t0);
      }
      std::printf("\n");
      std::fflush(stdout);
      out["rows"].push_back(row);
    }
  }
  for (int p : o.depths) {
    absl::Status st = ChronosTradeoff(o, profile, p, baseline[p].first, baseline[p].second, &out);
    if (!st.ok()) {
      std::fprintf(stderr, "chronos trade-off, p=%d: %s\n", p, st.ToString().c_str());
      return 1;
    }
  }

  std::printf("\nGeneration + validation time, p=%d m=%d (seconds)\n", o.gen_p, o.gen_m);
  for (const std::string& kind : ScheduleKinds()) {
    ShapeSpec shape;
    shape.kind = kind;
    shape.num_devices = o.gen_p;
    shape.chunks_per_device = DefaultChunksPerDevice(kind);
    shape.num_microbatches = o.gen_m;
    shape.chunk_layers.assign(o.gen_p * shape.chunks_per_device, 1);
    double gen = 0, val = 0;
    std::vector<std::pair<std::string, ShapeSpec>> shapes = {{kind, shape}};
    if (kind == "chronos") {
      ShapeSpec glued = shape;
      glued.block.glue_weights = true;
      shapes.push_back({"chronos (glued BW)", glued});
      glued.block.slot_weights = true;
      shapes.push_back({"chronos (slotted BW)", glued});
      // The same with the LLaMA layer's uneven F / BI / BW durations, which
      // the block's period search replays.
      const v1::JobSpec spec = LlamaSpec(o, o.gen_p, o.gen_m);
      const ModelShape ms = ModelShapeFromSpec(spec, profile);
      absl::StatusOr<std::vector<int>> layers = PartitionLayers(ms, 2 * o.gen_p, {});
      if (layers.ok()) {
        const CostModel cm(ms, profile, *layers);
        ShapeSpec real = ScheduleShape("chronos", o.gen_p, 2, o.gen_m, cm);
        real.block = glued.block;
        shapes.push_back({"chronos (slotted, LLaMA)", real});
      }
      ShapeSpec g = shape;
      g.block.greedy = true;
      shapes.push_back({"chronos (list-scheduled)", g});
    }
    for (const auto& [label, sh] : shapes) {
      auto t0 = std::chrono::steady_clock::now();
      absl::StatusOr<Schedule> s = GenerateSchedule(sh);
      gen = Seconds(t0);
      if (!s.ok()) {
        std::printf("  %-26s failed: %s\n", label.c_str(), s.status().ToString().c_str());
        continue;
      }
      t0 = std::chrono::steady_clock::now();
      absl::Status v = ValidateSchedule(*s);
      val = Seconds(t0);
      size_t actions = 0;
      for (const auto& l : s->devices) actions += l.size();
      std::printf("  %-26s generate %.3f  validate %.3f  (%zu actions)%s\n", label.c_str(), gen,
                  val, actions, v.ok() ? "" : "  INVALID");
      out["generation"].push_back({{"schedule", label},
                                   {"p", o.gen_p},
                                   {"m", o.gen_m},
                                   {"generate_seconds", gen},
                                   {"validate_seconds", val},
                                   {"actions", actions},
                                   {"valid", v.ok()}});
    }
  }
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    f << out.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "error: cannot write %s\n", o.json_path.c_str());
      return 1;
    }
    std::printf("\nJSON written to %s\n", o.json_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace chronos

int main(int argc, char** argv) { return chronos::Main(argc, argv); }
