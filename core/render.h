// Renderers for schedules and their simulated timelines: an ASCII chart for
// terminals (one row per device, width-limited) and Chrome-trace JSON
// (chrome://tracing, Perfetto). Pure; any thread.
#ifndef CHRONOS_CORE_RENDER_H_
#define CHRONOS_CORE_RENDER_H_

#include <string>

#include "core/schedule.h"
#include "core/simulator.h"

namespace chronos {

// One row per device; each compute action is drawn over the columns its
// simulated time covers (F as the micro-batch digit, B/BI as letters, BW as
// 'w', RECOMPUTE 'r', idle '.'), with a legend and the bubble ratio.
std::string RenderAscii(const Schedule& s, const SimResult& sim, int width = 120);

// Chrome trace events: one process per device with threads for compute,
// host copies and links; memory counters per device when the result has
// curves.
std::string RenderChromeTrace(const Schedule& s, const SimResult& sim);

}  // namespace chronos

#endif  // CHRONOS_CORE_RENDER_H_
