#include "core/render.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace chronos {
namespace {

char Glyph(const Action& a) {
  switch (a.type) {
    case ActionType::kF:
      return static_cast<char>('0' + (a.microbatch % 10));
    case ActionType::kB:
    case ActionType::kBI:
      return static_cast<char>('a' + (a.microbatch % 26));
    case ActionType::kBW:
      return 'w';
    case ActionType::kRecompute:
      return 'r';
    case ActionType::kOptimStep:
      return 'O';
    default:
      return '?';
  }
}

const char* ResourceName(Resource r) {
  switch (r) {
    case Resource::kCompute:
      return "compute";
    case Resource::kD2H:
      return "d2h";
    case Resource::kH2D:
      return "h2d";
    case Resource::kLink:
      return "send";
    case Resource::kAllReduce:
      return "allreduce";
  }
  return "?";
}

}  // namespace

std::string RenderAscii(const Schedule& s, const SimResult& sim, int width) {
  width = std::max(width, 40);
  const int label = 6;
  const int cols = width - label - 1;
  const double end = std::max(sim.iteration_seconds, 1e-12);
  std::vector<std::string> rows(s.num_devices, std::string(cols, '.'));
  std::vector<std::string> copies(s.num_devices, std::string(cols, ' '));
  bool any_copy = false;
  for (const TimelineEvent& e : sim.timeline) {
    int a = static_cast<int>(std::floor(e.start / end * cols));
    int b = static_cast<int>(std::ceil(e.end / end * cols));
    a = std::clamp(a, 0, cols - 1);
    b = std::clamp(b, a + 1, cols);
    if (e.resource == Resource::kCompute) {
      const char g = Glyph(s.devices[e.device][e.action]);
      for (int c = a; c < b; ++c) rows[e.device][c] = g;
    } else if (e.resource == Resource::kD2H || e.resource == Resource::kH2D) {
      any_copy = true;
      const char g = e.resource == Resource::kD2H ? 'v' : '^';
      for (int c = a; c < b; ++c) copies[e.device][c] = g;
    }
  }
  std::string out =
      absl::StrFormat("%s: p=%d v=%d m=%d  iteration %.4gs  bubble %.1f%%\n(one column = %.3gs)\n",
                      s.kind, s.num_devices, s.chunks_per_device, s.num_microbatches,
                      sim.iteration_seconds, 100 * sim.bubble_ratio, end / cols);
  for (int d = 0; d < s.num_devices; ++d) {
    absl::StrAppend(&out, absl::StrFormat("dev%-2d %s\n", d, rows[d]));
    if (any_copy) absl::StrAppend(&out, absl::StrFormat("  io  %s\n", copies[d]));
  }
  absl::StrAppend(&out,
                  "legend: digit = F of micro-batch (mod 10), letter = B/BI (a = mb 0),\n"
                  "        w = BW, r = RECOMPUTE, O = OPTIM_STEP, . = idle\n",
                  any_copy ? "        io row: v = offload (D2H), ^ = reload (H2D)\n" : "");
  return out;
}

std::string RenderChromeTrace(const Schedule& s, const SimResult& sim) {
  nlohmann::json events = nlohmann::json::array();
  for (int d = 0; d < s.num_devices; ++d) {
    events.push_back({{"ph", "M"},
                      {"name", "process_name"},
                      {"pid", d},
                      {"args", {{"name", absl::StrCat("device ", d)}}}});
    int tid = 0;
    for (Resource r : {Resource::kCompute, Resource::kD2H, Resource::kH2D, Resource::kLink,
                       Resource::kAllReduce}) {
      events.push_back({{"ph", "M"},
                        {"name", "thread_name"},
                        {"pid", d},
                        {"tid", tid++},
                        {"args", {{"name", ResourceName(r)}}}});
    }
  }
  for (const TimelineEvent& e : sim.timeline) {
    const Action& a = s.devices[e.device][e.action];
    nlohmann::json args = {{"chunk", a.chunk}, {"microbatch", a.microbatch}};
    if (a.peer >= 0) args["peer"] = a.peer;
    events.push_back({{"ph", "X"},
                      {"name", ActionToString(a)},
                      {"cat", ActionTypeName(a.type)},
                      {"pid", e.device},
                      {"tid", static_cast<int>(e.resource)},
                      {"ts", e.start * 1e6},
                      {"dur", (e.end - e.start) * 1e6},
                      {"args", args}});
  }
  for (int d = 0; d < static_cast<int>(sim.devices.size()); ++d) {
    for (const MemorySample& m : sim.devices[d].curve) {
      events.push_back({{"ph", "C"},
                        {"name", "memory (bytes)"},
                        {"pid", d},
                        {"ts", m.time * 1e6},
                        {"args",
                         {{"weights", m.bytes.weights},
                          {"gradients", m.bytes.gradients},
                          {"optimizer", m.bytes.optimizer},
                          {"activations", m.bytes.activations},
                          {"buffers", m.bytes.buffers},
                          {"offloaded", m.bytes.offloaded}}}});
    }
  }
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
  return doc.dump();
}

}  // namespace chronos
