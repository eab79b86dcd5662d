// The memory planner (Chronos-Recomp + Chronos-Offload): given a job spec,
// a device profile and an HBM budget per device, it builds the schedule,
// replays it with the cost model, and picks for every (chunk, micro-batch)
// activation keep, offload(fraction) or recompute, plus how much optimizer
// state lives in host memory, so that every device fits at the least added
// time. It reports what it chose and why. Pure; safe from any thread.
#ifndef CHRONOS_CORE_PLANNER_H_
#define CHRONOS_CORE_PLANNER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chronos/v1/job.pb.h"
#include "chronos/v1/plan.pb.h"
#include "chronos/v1/profile.pb.h"
#include "core/cost_model.h"
#include "core/memory_passes.h"
#include "core/order_search.h"
#include "core/schedule.h"
#include "core/simulator.h"

namespace chronos {

// A schedule "variant" names a generator and, optionally, memory settings
// that override the job spec's: "<kind>[+plain|+recompute|+selective|+offload]".
//   +plain      keep everything, no offload, optimizer state on the device,
//               no memory.activation_budget
//   +recompute  full recomputation (layer granularity), nothing offloaded
//   +selective  selective recomputation everywhere, nothing offloaded
//   +offload    every activation offloaded (ratio 1), no recomputation
struct ScheduleVariant {
  std::string name;  // as written
  std::string kind;
  v1::MemorySpec memory;  // effective memory settings
};
absl::StatusOr<ScheduleVariant> ParseVariant(const std::string& name,
                                             const v1::MemorySpec& job_memory);

struct PlanOptions {
  int64_t hbm_budget_bytes = 0;  // 0 = memory.hbm_budget of the spec, or auto
  // Activations any device may hold in HBM after offload and recompute;
  // 0 = memory.activation_budget of the spec (none when unset).
  int64_t activation_budget_bytes = 0;
  bool include_decisions = false;
  // MaxLayers only: a size counts as trainable only at this MFU or more.
  double min_mfu = 0;
  // BuildPlanReport with max_layers only: the floor is also this share of
  // plain 1F1B's MFU at its own largest size (0 = none); the higher of the
  // two floors applies to every row but 1f1b+plain.
  double min_mfu_share = 0;
  // Keep the chosen plan's timeline and memory curves in PlannedSchedule::sim
  // (what the renderers draw); MaxLayers' probes skip them.
  bool record_timeline = true;
  // Move RECOMPUTEs into time their device waits for a receive, where that
  // is faster and fits (core/idle_recompute.h).
  bool idle_recompute = true;
  // Remembers order searches across plans of the same job (the
  // coordinator's re-planner owns one); null = search every time.
  OrderSearchMemo* search_memo = nullptr;
  // Polled between candidates, between the memory planner's rounds and
  // every few hundred order-search steps: once it returns true, planning
  // ends with kCancelled (the caller was cancelled or out of time). Pure
  // callers leave it empty. Called from the planner's threads, so it must
  // be thread-safe.
  std::function<bool()> should_stop;
};

// Everything the coordinator pushes and reports for one planned schedule.
struct PlannedSchedule {
  ScheduleVariant variant;
  Schedule schedule;  // final: memory actions, ALLREDUCE, OPTIM_STEP
  PolicyTable policy;
  std::vector<double> optimizer_offload;  // per device, fraction in host memory
  std::unique_ptr<CostModel> costs;
  SimResult sim;
  int64_t budget_bytes = 0;
  int64_t activation_budget_bytes = 0;  // 0 = none
  bool fits = false;
  v1::SchedulePlan report;  // the row `chronosctl plan` prints
};

// Plans one variant. Fails (kInvalidArgument naming the field) only on a
// spec the variant cannot run at all, (kCancelled) when
// options.should_stop said so, or (kResourceExhausted) when
// schedule.activation_cap is set and no order keeps every device's
// activations under it; a plan that does not fit the budget is returned
// with fits = false and the report says why.
absl::StatusOr<PlannedSchedule> PlanSchedule(const v1::JobSpec& spec,
                                             const v1::DeviceProfile& profile,
                                             const std::string& variant,
                                             const PlanOptions& options = {});

// The largest model.layers (all else equal) for which the variant fits.
// Returns 0 if even one layer per chunk does not fit.
absl::StatusOr<int> MaxLayers(const v1::JobSpec& spec, const v1::DeviceProfile& profile,
                              const std::string& variant, const PlanOptions& options = {},
                              PlannedSchedule* at_max = nullptr);

// The orders the planner compares for a kind (one for all kinds but
// chronos): generator tunings with the in-flight cap each uses.
struct OrderCandidateTuning {
  BlockTuning tuning;
  int inflight_cap = 0;
};
std::vector<OrderCandidateTuning> ScheduleCandidates(const std::string& kind, int p, int v,
                                                     int spec_cap);
// How a candidate orders the kind's work, as the plan report names it.
std::string DescribeOrder(const std::string& kind, const OrderCandidateTuning& candidate);

// One row per variant (all generators when `variants` is empty), as
// `chronosctl plan` and ControlService.PlanJob return it.
absl::StatusOr<v1::PlanReport> BuildPlanReport(const v1::JobSpec& spec,
                                               const std::vector<std::string>& variants,
                                               bool max_layers, const PlanOptions& options = {});

}  // namespace chronos

#endif  // CHRONOS_CORE_PLANNER_H_
