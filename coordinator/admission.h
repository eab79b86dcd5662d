// Gang admission as a pure function: the jobs waiting for workers (in
// submission order) x the idle attached workers x the clock -> which jobs
// start now, on how many workers, with which plan, and which plans it still
// needs before it can decide the next job. First come, first served: a
// later, smaller job never overtakes one still waiting (or recovering), so
// big jobs cannot starve. A recovering job restarts at its full width when
// enough workers are idle, else, once its grace period for lost workers has
// passed, at the narrower width that fits with the most devices (then the
// most tokens per second the planner predicts).
#ifndef CHRONOS_COORDINATOR_ADMISSION_H_
#define CHRONOS_COORDINATOR_ADMISSION_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chronos/v1/job.pb.h"
#include "coordinator/replanner.h"

namespace chronos::coordinator {

struct WaitingJob {
  std::string name;
  const v1::JobSpec* spec = nullptr;  // the submitted spec (its width)
  bool recovering = false;            // else pending: never started
  bool restart_due = false;           // recovering: its back-off has passed
  bool may_narrow = false;            // recovering: its grace period has passed
};

struct AdmissionStart {
  std::string job;
  int pipeline = 0;
  int data = 0;
  SharedPlan plan;  // null: the job's current plan (a pending job)
};

struct AdmissionDecision {
  std::vector<AdmissionStart> starts;  // in order; workers taken in order
  // Plans admission needs before it can decide `plan_job` (recovery widths
  // not planned yet); empty when none.
  std::string plan_job;
  std::vector<std::pair<int, int>> plan_widths;
};

// The recovery plan of `job` at (pipeline, data): nullopt when not planned
// yet, a null SharedPlan when it does not fit or cannot run that narrow.
using PlanLookup =
    std::function<std::optional<SharedPlan>(const std::string& job, int pipeline, int data)>;

AdmissionDecision Admit(const std::vector<WaitingJob>& waiting, size_t idle,
                        const PlanLookup& plans);

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_ADMISSION_H_
