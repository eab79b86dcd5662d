#include "coordinator/replanner.h"

#include <algorithm>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/request_checks.h"
#include "core/device_profile.h"
#include "core/job_spec.h"
#include "core/job_width.h"

namespace chronos::coordinator {
std::string FormatBytes(int64_t bytes) {
  const double gib = static_cast<double>(bytes) / (1LL << 30);
  if (gib >= 1) return absl::StrFormat("%.2f GiB", gib);
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

double EffectiveOffloadRatio(const v1::JobSpec& spec, const PlannedSchedule& plan) {
  return spec.memory().has_offload_ratio() ? spec.memory().offload_ratio()
                                           : plan.report.offload_ratio();
}

v1::JobSpec EffectiveSpec(const v1::JobSpec& spec, const v1::JobStatus& status) {
  v1::JobSpec effective = SpecAtWidth(spec, status.pipeline(), status.data());
  if (status.hbm_budget_bytes() > 0) {
    effective.mutable_memory()->set_hbm_budget_bytes(status.hbm_budget_bytes());
  }
  return effective;
}

absl::StatusOr<SharedPlan> Replanner::PlanSpec(const v1::JobSpec& spec, const std::string& field,
                                               const StopCheck& should_stop) {
  absl::StatusOr<v1::DeviceProfile> profile = ResolveDeviceProfile(spec.device());
  if (!profile.ok()) return AsInvalidArgument(profile.status());
  PlanOptions options;
  options.search_memo = &memo_;
  options.should_stop = should_stop;
  absl::StatusOr<PlannedSchedule> plan =
      PlanSchedule(spec, *profile, spec.schedule().kind(), options);
  // Stopped is the caller's doing, not the spec's fault.
  if (absl::IsCancelled(plan.status())) return plan.status();
  if (!plan.ok()) return AsInvalidArgument(plan.status());
  if (!plan->fits) {
    std::string why = plan->report.error();
    if (why.empty()) why = "the planner found no policy that fits";
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": schedule ", spec.schedule().kind(), " does not fit the HBM budget of ",
        FormatBytes(plan->budget_bytes), " per device: ", why,
        ". Raise memory.hbm_budget, allow memory.recompute / "
        "memory.offload_ratio, or use more pipeline stages"));
  }
  return SharedPlan(std::make_shared<PlannedSchedule>(std::move(*plan)));
}

SharedPlan Replanner::AtWidth(const v1::JobSpec& spec, int64_t hbm_budget_bytes, int pipeline,
                              int data, const StopCheck& should_stop) {
  v1::JobStatus at_width;
  at_width.set_pipeline(pipeline);
  at_width.set_data(data);
  at_width.set_hbm_budget_bytes(hbm_budget_bytes);
  const v1::JobSpec effective = EffectiveSpec(spec, at_width);
  if (!ValidateJobSpec(effective).ok()) return nullptr;
  absl::StatusOr<SharedPlan> plan = PlanSpec(effective, "memory.hbm_budget", should_stop);
  return plan.ok() ? *plan : nullptr;
}

std::vector<std::vector<std::pair<int, int>>> NarrowerWidths(const v1::JobSpec& spec, size_t idle) {
  const int spec_pipeline = spec.parallel().pipeline();
  const int spec_data = std::max(1, spec.parallel().data());
  std::map<int, std::vector<std::pair<int, int>>, std::greater<>> by_devices;
  for (int p = 1; p <= spec_pipeline; ++p) {
    for (int d = 1; d <= spec_data; ++d) {
      const size_t devices = static_cast<size_t>(p) * d;
      if (devices > idle || devices == static_cast<size_t>(spec_pipeline) * spec_data ||
          !KeepsGlobalBatch(spec, d)) {
        continue;
      }
      by_devices[p * d].push_back({p, d});
    }
  }
  std::vector<std::vector<std::pair<int, int>>> groups;
  int total = 0;
  for (auto& [devices, widths] : by_devices) {
    if (total >= kMaxNarrowerPlans) break;
    const int room = kMaxNarrowerPlans - total;
    if (static_cast<int>(widths.size()) > room) widths.resize(room);
    total += static_cast<int>(widths.size());
    groups.push_back(std::move(widths));
  }
  return groups;
}

}  // namespace chronos::coordinator
