#include "coordinator/admission.h"

#include <algorithm>

namespace chronos::coordinator {

AdmissionDecision Admit(const std::vector<WaitingJob>& waiting, size_t idle,
                        const PlanLookup& plans) {
  AdmissionDecision out;
  for (const WaitingJob& w : waiting) {
    const int pipeline = w.spec->parallel().pipeline();
    const int data = std::max(1, w.spec->parallel().data());
    const size_t full = static_cast<size_t>(pipeline) * data;
    if (!w.recovering) {
      if (idle < full) break;
      out.starts.push_back({w.name, pipeline, data, nullptr});
      idle -= full;
      continue;
    }
    if (!w.restart_due) break;
    std::optional<AdmissionStart> start;
    if (idle >= full) {
      std::optional<SharedPlan> plan = plans(w.name, pipeline, data);
      if (!plan) {
        out.plan_job = w.name;
        out.plan_widths = {{pipeline, data}};
        break;
      }
      if (*plan) start = AdmissionStart{w.name, pipeline, data, *plan};
    } else if (w.may_narrow) {
      for (const auto& group : NarrowerWidths(*w.spec, idle)) {
        std::vector<std::pair<int, int>> missing;
        SharedPlan best;
        std::pair<int, int> best_width;
        for (const auto& [p, d] : group) {
          std::optional<SharedPlan> plan = plans(w.name, p, d);
          if (!plan) {
            missing.push_back({p, d});
          } else if (*plan && (!best || (*plan)->report.tokens_per_second() >
                                            best->report.tokens_per_second())) {
            best = *plan;
            best_width = {p, d};
          }
        }
        if (!missing.empty()) {
          out.plan_job = w.name;
          out.plan_widths = std::move(missing);
          return out;
        }
        if (best) {
          start = AdmissionStart{w.name, best_width.first, best_width.second, best};
          break;
        }
      }
    }
    if (!start) break;
    idle -= static_cast<size_t>(start->pipeline) * start->data;
    out.starts.push_back(std::move(*start));
  }
  return out;
}

}  // namespace chronos::coordinator
