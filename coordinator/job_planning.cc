// The JobController's planning of submitted jobs (coordinator/job_controller.h):
// a job is stored PLANNING, its plan is made on the background planner
// (coordinator/plan_queue.h) with no lock held, and the job moves on when
// the plan lands. A cancel, the coordinator's shutdown and the planning
// deadline stop the plan through core's should_stop.
#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/job_controller.h"
#include "coordinator/job_lifecycle.h"

namespace chronos::coordinator {

StopCheck JobController::PlanStop(CancelFlag cancel, std::shared_ptr<std::atomic<bool>> timed_out) {
  const absl::Time deadline = clock_->Now() + planning_.deadline;
  Clock* clock = clock_;
  return [clock, deadline, cancel = std::move(cancel), timed_out = std::move(timed_out)] {
    if (cancel && cancel->load()) return true;
    if (clock->Now() < deadline) return false;
    if (timed_out) timed_out->store(true);
    return true;
  };
}

std::string JobController::PlanDeadlineMessage(const v1::JobSpec& spec) const {
  return absl::StrCat("the plan did not finish within the coordinator's planning limit of ",
                      absl::FormatDuration(planning_.deadline),
                      " (--plan-deadline-seconds): schedule.order_search_steps ",
                      spec.schedule().order_search_steps(), " and training.microbatches ",
                      spec.training().microbatches(), " at parallel.pipeline ",
                      spec.parallel().pipeline(),
                      " make it too big to plan in that time; lower schedule.order_search_steps or "
                      "training.microbatches (`chronosctl plan` shows how long a shape takes)");
}

JobController::PlanningTask JobController::BeginPlanning(JobRuntime* rt) {
  rt->planning_cancel = std::make_shared<std::atomic<bool>>(false);
  return PlanningTask{BasisOf(*rt), rt->job.spec(), rt->planning_cancel};
}

void JobController::EnqueuePlanning(std::vector<PlanningTask> tasks) {
  for (PlanningTask& task : tasks) {
    CancelFlag cancel = task.cancel;
    planner_.Enqueue(std::move(cancel), [this, task = std::move(task)] { RunPlanning(task); });
  }
}

void JobController::RunPlanning(const PlanningTask& task) {
  // A landed plan may admit the job; recovery plans admission asks for are
  // made on the way out, like every other caller's.
  AdmitOnExit admit(this);
  const absl::Time started = clock_->Now();
  auto timed_out = std::make_shared<std::atomic<bool>>(false);
  absl::StatusOr<SharedPlan> plan =
      replanner_->PlanSpec(task.spec, "memory.hbm_budget", PlanStop(task.cancel, timed_out));
  const absl::Duration took = clock_->Now() - started;

  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(task.basis.job);
  // Cancelled, or deleted and submitted again, meanwhile: nothing to land.
  if (rt == nullptr || !(BasisOf(*rt) == task.basis)) return;
  if (!plan.ok() && !timed_out->load() && task.cancel->load()) {
    // Stopped by the coordinator's shutdown: the job stays PLANNING in the
    // store, and the next start plans it again.
    return;
  }
  rt->planning_cancel.reset();
  Mutation m = Begin(*rt);
  if (!plan.ok()) {
    const std::string why =
        timed_out->load() ? PlanDeadlineMessage(task.spec) : std::string(plan.status().message());
    if (!Transition(&m, v1::JOB_STATE_FAILED, "PlanFailed",
                    absl::StrCat("the job cannot be planned: ", why))
             .ok() ||
        !Commit(rt, std::move(m)).ok()) {
      return;
    }
    AdmitPending();
    return;
  }
  AddEvent(
      &m, "Planned",
      absl::StrCat("planned in ", absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))),
                   ": ", (*plan)->report.policy()));
  const v1::JobSpec& spec = m.job.spec();
  const int needed = spec.parallel().pipeline() * std::max(1, spec.parallel().data());
  const std::string waiting = absl::StrCat("waiting for ", needed, " idle workers");
  if (!Transition(&m, v1::JOB_STATE_PENDING, "Planned", waiting).ok()) return;
  SetCondition(m.job.mutable_status(), "Admitted", false, "WaitingForWorkers", waiting,
               clock_->Now());
  if (!Commit(rt, std::move(m)).ok()) {
    // The store refused; the plan is kept and the job stays PLANNING until
    // the next start plans it again.
    return;
  }
  rt->plan = *plan;
  AdmitPending();
  PublishGauges();
}

}  // namespace chronos::coordinator
