// Every plan the coordinator makes of a job: at submission, after a live
// policy change, at recovery (the same or a narrower width) and after an
// out-of-memory fault. It is planning over a spec and nothing else: no job
// state, no lock of the JobController's, so the controller calls it with
// its lock released and commits the result only if the job has not changed
// meanwhile (a generation check). It owns the order-search memo, so the
// re-plans of a job reuse the orders its submission searched.
//
// Thread-safe. Virtual so that tests can stand in a slow or counting one.
#ifndef CHRONOS_COORDINATOR_REPLANNER_H_
#define CHRONOS_COORDINATOR_REPLANNER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "chronos/v1/job.pb.h"
#include "coordinator/search_memo.h"
#include "core/planner.h"

namespace chronos::coordinator {

using SharedPlan = std::shared_ptr<const PlannedSchedule>;

// Polled by a plan while it runs (core's PlanOptions::should_stop): true
// stops it with kCancelled. Thread-safe; empty = never.
using StopCheck = std::function<bool()>;

class Replanner {
 public:
  virtual ~Replanner() = default;

  // Plans `spec` (defaults applied, validated) with its own schedule kind.
  // Every way the spec cannot run is kInvalidArgument naming a field;
  // `field` names the knob the caller changed when the plan does not fit.
  // kCancelled once `should_stop` returned true.
  virtual absl::StatusOr<SharedPlan> PlanSpec(const v1::JobSpec& spec, const std::string& field,
                                              const StopCheck& should_stop);

  // The submitted `spec` at `pipeline` stages x `data` replicas and the HBM
  // budget recovery chose (0: the spec's); null when it cannot run that
  // narrow, does not fit, or was stopped.
  SharedPlan AtWidth(const v1::JobSpec& spec, int64_t hbm_budget_bytes, int pipeline, int data,
                     const StopCheck& should_stop);

 private:
  SearchMemo memo_;
};

// The most plans one narrower-width search may ask for: a job that fits
// nowhere must not cost p x d plans.
inline constexpr int kMaxNarrowerPlans = 64;

// The widths narrower than the spec's that `idle` workers can run, fewest
// lost devices first: one group per device count (the caller takes the
// group's width with the most tokens per second the planner predicts),
// kMaxNarrowerPlans widths at most. Fewer devices means a tighter memory
// plan: fewer stages hold more layers each, fewer replicas run more
// micro-batches each (the global batch stays the spec's), so the planner
// decides which still fit. Pure.
std::vector<std::vector<std::pair<int, int>>> NarrowerWidths(const v1::JobSpec& spec, size_t idle);

// The offload ratio a plan runs with: the spec's when set, else the
// planner's choice.
double EffectiveOffloadRatio(const v1::JobSpec& spec, const PlannedSchedule& plan);

// The spec a job's attempts run with: the submitted spec at the width and
// HBM budget that recovery chose (status.pipeline, status.data,
// status.hbm_budget_bytes) when they differ.
v1::JobSpec EffectiveSpec(const v1::JobSpec& spec, const v1::JobStatus& status);

// "1.50 GiB", "12.0 MiB".
std::string FormatBytes(int64_t bytes);

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_REPLANNER_H_
