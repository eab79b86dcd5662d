// The JobController's attempts: admission, starting and ending attempts,
// failures and recovery, and the reports of running workers
// (coordinator/job_controller.h).
#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/admission.h"
#include "coordinator/job_controller.h"
#include "coordinator/job_lifecycle.h"
#include "coordinator/request_checks.h"
#include "core/schedule_proto.h"

namespace chronos::coordinator {
namespace {

// Why a fault of `kind` fails the job at once ("" for one a restart may
// cure).
std::string PermanentReason(v1::FaultKind kind) {
  switch (kind) {
    case v1::FAULT_INPUT:
      return "a new attempt would read the same data (fix data.path or its files, then "
             "submit again)";
    case v1::FAULT_STORAGE:
      return "training.checkpoint_dir is out of space, and re-planning would not free any "
             "(free space or raise the quota, then submit again; the last complete "
             "checkpoint is kept)";
    default:
      return "";
  }
}

}  // namespace

// ---------------------------------------------------------------- admission

void JobController::AdmitPending() {
  std::vector<JobRuntime*> order;
  for (auto& [name, rt] : jobs_) {
    const v1::JobState state = rt->job.status().state();
    if (state == v1::JOB_STATE_PENDING || state == v1::JOB_STATE_RECOVERING) {
      order.push_back(rt.get());
    }
  }
  if (order.empty()) return;
  std::sort(order.begin(), order.end(),
            [](const JobRuntime* a, const JobRuntime* b) { return a->order < b->order; });
  const absl::Time now = clock_->Now();
  std::vector<WaitingJob> waiting;
  for (const JobRuntime* rt : order) {
    WaitingJob w;
    w.name = rt->job.metadata().name();
    w.spec = &rt->job.spec();
    w.recovering = rt->job.status().state() == v1::JOB_STATE_RECOVERING;
    w.restart_due = now >= rt->recover_after;
    w.may_narrow = now - rt->recovering_since >= recovery_.wait_for_workers;
    waiting.push_back(std::move(w));
  }
  std::map<std::string, const JobRuntime*> by_name;
  for (const JobRuntime* rt : order) by_name[rt->job.metadata().name()] = rt;
  std::vector<std::string> idle = workers_->IdleAttached();
  const AdmissionDecision decision =
      Admit(waiting, idle.size(),
            [&by_name](const std::string& job, int p, int d) -> std::optional<SharedPlan> {
              const JobRuntime* rt = by_name.at(job);
              auto it = rt->recovery_plans.find({p, d});
              if (it == rt->recovery_plans.end()) return std::nullopt;
              return it->second;
            });
  for (const AdmissionStart& start : decision.starts) {
    const size_t needed = static_cast<size_t>(start.pipeline) * start.data;
    std::vector<std::string> chosen(idle.begin(), idle.begin() + needed);
    idle.erase(idle.begin(), idle.begin() + needed);
    absl::Status s = StartAttempt(Find(start.job), chosen, start.pipeline, start.plan);
    if (!s.ok()) return;  // the store is failing; retry on the next tick
  }
  if (!decision.plan_job.empty()) {
    JobRuntime* rt = Find(decision.plan_job);
    plan_request_ = PlanRequest{BasisOf(*rt), rt->job.spec(), decision.plan_widths};
  }
}

void JobController::ResolvePlans() {
  // Each round plans what admission asked for (one width, or one group of
  // narrower widths). The rounds are bounded; a request still open after
  // them stays for the next call (the next tick).
  for (int round = 0; round < 16; ++round) {
    std::optional<PlanRequest> request;
    {
      absl::MutexLock lock(&mu_);
      request.swap(plan_request_);
    }
    if (!request) return;
    std::vector<std::pair<std::pair<int, int>, SharedPlan>> planned;
    for (const auto& [p, d] : request->widths) {
      planned.push_back(
          {{p, d},
           replanner_->AtWidth(request->spec, request->basis.hbm_budget_bytes, p, d, PlanStop())});
    }
    absl::MutexLock lock(&mu_);
    JobRuntime* rt = Find(request->basis.job);
    // A job that changed meanwhile (a new policy, another attempt, a
    // cancel) is planned again by the admission that needs it.
    if (rt != nullptr && request->basis == BasisOf(*rt)) {
      for (auto& [width, plan] : planned) rt->recovery_plans[width] = std::move(plan);
    }
    AdmitPending();
    PublishGauges();
  }
}

// ----------------------------------------------------------------- attempts

const v1::StageAssignment* JobController::StageOf(const JobRuntime& rt,
                                                  const std::string& worker_id) const {
  for (const v1::StageAssignment& a : rt.job.status().assignments()) {
    if (a.worker_id() == worker_id) return &a;
  }
  return nullptr;
}

v1::Assignment JobController::BuildAssignment(const JobRuntime& rt,
                                              const v1::StageAssignment& stage) const {
  const v1::Job& job = rt.job;
  v1::Assignment a;
  a.set_job(job.metadata().name());
  a.set_attempt(job.status().attempt());
  *a.mutable_spec() = EffectiveSpec(job.spec(), job.status());
  a.set_device(stage.device());
  a.set_data_rank(stage.data_rank());
  a.set_num_devices(a.spec().parallel().pipeline());
  a.set_data_parallel(a.spec().parallel().data());
  a.set_checkpoint_num_devices(job.status().checkpoint_pipeline() > 0
                                   ? job.status().checkpoint_pipeline()
                                   : a.num_devices());
  if (rt.plan) *a.mutable_schedule() = ScheduleToProto(rt.plan->schedule, stage.device());
  a.set_store_prefix(StorePrefix(job.metadata().name(), job.status().attempt()));
  a.set_resume_iteration(job.status().checkpoint_iteration());
  a.set_checkpoint_dir(job.spec().training().checkpoint_dir());
  a.set_policy_generation(job.metadata().generation());
  if (rt.plan) a.set_offload_ratio(EffectiveOffloadRatio(job.spec(), *rt.plan));
  for (const std::string& r : roots_.data) a.add_allowed_data_roots(r);
  for (const std::string& r : roots_.checkpoints) a.add_allowed_checkpoint_roots(r);
  return a;
}

absl::Status JobController::StartAttempt(JobRuntime* rt, const std::vector<std::string>& workers,
                                         int pipeline, SharedPlan plan) {
  if (plan) rt->plan = std::move(plan);
  if (!rt->plan) {
    // Planned at submit or load; a missing plan is a bug, not a user error.
    return absl::InternalError("job has no plan");
  }
  const std::string name = rt->job.metadata().name();
  Mutation m = Begin(*rt);
  v1::JobStatus* st = m.job.mutable_status();
  const bool recovering = st->state() == v1::JOB_STATE_RECOVERING;
  const int previous_pipeline =
      st->pipeline() > 0 ? st->pipeline() : m.job.spec().parallel().pipeline();
  const int spec_data = std::max(1, m.job.spec().parallel().data());
  const int previous_data = st->data() > 0 ? st->data() : spec_data;
  const int data = static_cast<int>(workers.size()) / pipeline;
  const int attempt = st->attempt() + 1;
  st->set_attempt(attempt);
  st->set_pipeline(pipeline);
  st->set_data(data);
  st->set_hbm_budget_bytes(rt->plan->budget_bytes);
  st->clear_assignments();
  for (size_t i = 0; i < workers.size(); ++i) {
    v1::StageAssignment* a = st->add_assignments();
    a->set_device(static_cast<int>(i) % pipeline);
    a->set_data_rank(static_cast<int>(i) / pipeline);
    a->set_worker_id(workers[i]);
    for (int c : rt->plan->schedule.DeviceChunks(a->device())) a->add_chunks(c);
  }
  const v1::JobSpec effective = EffectiveSpec(m.job.spec(), *st);
  v1::PolicyState policy;
  policy.set_offload_ratio(EffectiveOffloadRatio(effective, *rt->plan));
  policy.set_recompute(effective.memory().recompute());
  policy.set_generation(m.job.metadata().generation());
  *st->mutable_policy() = policy;
  st->set_observed_generation(m.job.metadata().generation());
  std::string from = "from the beginning";
  if (recovering) {
    // Iterations after the checkpoint run again; status follows them.
    st->set_iteration(st->checkpoint_iteration());
    if (st->checkpoint_iteration() > 0) {
      from = absl::StrCat("from the checkpoint of iteration ", st->checkpoint_iteration());
    } else {
      from = "from the beginning (no checkpoint yet)";
    }
    if (pipeline != previous_pipeline || data != previous_data) {
      AddEvent(
          &m, "Replanned",
          absl::StrCat("re-planned onto ", pipeline, " stages x ", data, " replicas of ",
                       effective.training().microbatches(), " micro-batches (was ",
                       previous_pipeline, " x ", previous_data, "): ", rt->plan->report.policy()));
    }
  }
  AddEvent(&m, "Admitted",
           absl::StrCat("attempt ", attempt, " on workers ", absl::StrJoin(workers, ", "), ", ",
                        pipeline, " stages x ", data, " replicas, ", from));
  absl::Status s =
      Transition(&m, v1::JOB_STATE_RUNNING, recovering ? "Recovered" : "Admitted",
                 absl::StrCat("attempt ", attempt, " running on ", workers.size(), " workers"));
  if (!s.ok()) return s;
  s = Commit(rt, std::move(m));
  if (!s.ok()) return s;
  rt->progress = ProgressTracker(rt->job.status().checkpoint_iteration());
  rt->recovery_plans.clear();
  rt->policies[policy.generation()] = policy;
  // Open before the assignments go out: workers rendezvous right away.
  kv_->OpenScope(StorePrefix(name, attempt));
  for (const v1::StageAssignment& a : rt->job.status().assignments()) {
    workers_->Bind(a.worker_id(), WorkerBinding{name, attempt});
    v1::WorkerCommand cmd;
    *cmd.mutable_assign() = BuildAssignment(*rt, a);
    // A worker whose stream dropped gets it again when it re-attaches.
    workers_->Send(a.worker_id(), std::move(cmd));
  }
  PublishGauges();
  return absl::OkStatus();
}

void JobController::EndAttempt(JobRuntime* rt, const std::string& stop_reason, bool send_stop) {
  const std::string& name = rt->job.metadata().name();
  const int attempt = rt->job.status().attempt();
  for (const v1::StageAssignment& a : rt->job.status().assignments()) {
    std::optional<WorkerBinding> b = workers_->BindingOf(a.worker_id());
    if (send_stop) {
      v1::WorkerCommand cmd;
      v1::StopCommand* stop = cmd.mutable_stop();
      stop->set_job(name);
      stop->set_attempt(attempt);
      stop->set_reason(stop_reason);
      workers_->Send(a.worker_id(), std::move(cmd));
    }
    if (b && b->job == name && b->attempt == attempt) workers_->Release(a.worker_id());
  }
  kv_->CloseScope(StorePrefix(name, attempt));
  rt->progress = ProgressTracker();
  PublishGauges();
}

void JobController::FailAttempt(JobRuntime* rt, const std::string& reason,
                                const std::string& message,
                                const absl::StatusOr<SharedPlan>* smaller_plan,
                                const std::string& permanent) {
  Mutation m = Begin(*rt);
  AddEvent(&m, reason, message);
  v1::JobStatus* st = m.job.mutable_status();
  const int restarts = st->restarts();
  std::string give_up;
  SharedPlan smaller;
  if (!permanent.empty()) {
    give_up = absl::StrCat(message, "; not restarting: ", permanent);
  } else if (restarts >= recovery_.max_restarts) {
    give_up =
        absl::StrCat(message, "; giving up after ", restarts, " restart", restarts == 1 ? "" : "s",
                     " (the limit is ", recovery_.max_restarts, ")");
  } else if (smaller_plan != nullptr) {
    // Out of memory: the device had less room than planned (fragmentation,
    // other tenants); the caller planned for less instead of failing.
    const int64_t current = rt->plan ? rt->plan->budget_bytes : st->hbm_budget_bytes();
    const int64_t budget = OomBudget(current);
    if (smaller_plan->ok()) {
      smaller = **smaller_plan;
      st->set_hbm_budget_bytes(smaller->budget_bytes);
      AddEvent(
          &m, "Replanned",
          absl::StrCat("out of memory: re-planned for ", FormatBytes(budget), " per device (was ",
                       FormatBytes(current), "): ", smaller->report.policy()));
    } else {
      give_up = absl::StrCat(message, "; out of memory, and no plan fits ", FormatBytes(budget),
                             " per device: ", smaller_plan->status().message());
    }
  }
  absl::Duration backoff = absl::ZeroDuration();
  if (give_up.empty()) {
    backoff =
        std::min(recovery_.max_backoff,
                 recovery_.backoff * static_cast<double>(int64_t{1} << std::min(restarts, 20)));
    st->set_restarts(restarts + 1);
    const std::string from =
        st->checkpoint_iteration() > 0
            ? absl::StrCat("the checkpoint of iteration ", st->checkpoint_iteration())
            : std::string("the beginning (no checkpoint yet)");
    if (!Transition(
             &m, v1::JOB_STATE_RECOVERING, reason,
             absl::StrCat(message, "; restart ", restarts + 1, " of ", recovery_.max_restarts,
                          " in ", absl::FormatDuration(backoff), ", from ", from))
             .ok()) {
      return;
    }
  } else if (!Transition(&m, v1::JOB_STATE_FAILED, reason, give_up).ok()) {
    return;
  }
  absl::Status s = Commit(rt, std::move(m));
  if (!s.ok()) return;  // the next tick or report tries again
  EndAttempt(rt, message, /*send_stop=*/true);
  if (give_up.empty()) {
    metrics_->RecordRestart();
    const absl::Time now = clock_->Now();
    rt->recover_after = now + backoff;
    rt->recovering_since = now;
    rt->recovery_plans.clear();
    if (smaller) {
      rt->plan = smaller;
      const v1::JobStatus& st = rt->job.status();
      const int width = st.pipeline() > 0 ? st.pipeline() : rt->job.spec().parallel().pipeline();
      const int data = st.data() > 0 ? st.data() : std::max(1, rt->job.spec().parallel().data());
      rt->recovery_plans[{width, data}] = smaller;
    }
  } else {
    rt->plan.reset();
  }
  AdmitPending();
}

int64_t JobController::OomBudget(int64_t current) const {
  return static_cast<int64_t>(static_cast<double>(current) * recovery_.oom_budget_factor);
}

// ------------------------------------------------------------ worker events

void JobController::LoseWorker(const std::string& id, const WorkerBinding& binding,
                               absl::string_view why) {
  JobRuntime* rt = Find(binding.job);
  // Only the attempt the worker was bound to is affected.
  if (rt == nullptr || rt->job.status().state() != v1::JOB_STATE_RUNNING ||
      rt->job.status().attempt() != binding.attempt) {
    return;
  }
  const v1::StageAssignment* stage = StageOf(*rt, id);
  FailAttempt(rt, "WorkerLost",
              stage != nullptr ? absl::StrCat("worker ", id, " (stage ", stage->device(),
                                              ", data rank ", stage->data_rank(), ") ", why)
                               : absl::StrCat("worker ", id, " ", why));
}

std::map<std::string, int> JobController::RunningStages() {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int> out;
  for (const auto& [name, rt] : jobs_) {
    if (rt->job.status().state() != v1::JOB_STATE_RUNNING) continue;
    for (const v1::StageAssignment& a : rt->job.status().assignments()) {
      out[a.worker_id()] = a.device();
    }
  }
  return out;
}

void JobController::OnWorkerRegistered(const WorkerRegistry::Registration& registration) {
  if (registration.superseded.empty()) return;
  AdmitOnExit admit(this);
  absl::MutexLock lock(&mu_);
  for (const auto& [id, binding] : registration.superseded) {
    LoseWorker(id, binding, "restarted: a new process registered under its name");
  }
  PublishGauges();
}

void JobController::OnWorkerAttached(const std::string& worker_id) {
  AdmitOnExit admit(this);
  absl::MutexLock lock(&mu_);
  std::optional<WorkerBinding> binding = workers_->BindingOf(worker_id);
  if (binding) {
    JobRuntime* rt = Find(binding->job);
    const v1::StageAssignment* stage = rt ? StageOf(*rt, worker_id) : nullptr;
    if (stage != nullptr && rt->job.status().state() == v1::JOB_STATE_RUNNING &&
        rt->job.status().attempt() == binding->attempt) {
      // Same (job, attempt) as the worker may already run: not a restart.
      v1::WorkerCommand cmd;
      *cmd.mutable_assign() = BuildAssignment(*rt, *stage);
      workers_->Send(worker_id, std::move(cmd));
    } else {
      workers_->Release(worker_id);
    }
  }
  AdmitPending();
  PublishGauges();
}

absl::StatusOr<v1::ProgressAck> JobController::ReportProgress(const v1::ProgressReport& report) {
  absl::Status s = CheckName(report.job());
  if (!s.ok()) return s;
  if (report.iteration() < 0 || report.checkpoint_iteration() < 0) {
    return absl::InvalidArgumentError("iteration and checkpoint_iteration must be >= 0");
  }
  AdmitOnExit admit(this);
  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(report.job());
  if (rt == nullptr) return NotFound(report.job());
  v1::ProgressAck ack;
  const v1::JobStatus& status = rt->job.status();
  if (status.state() != v1::JOB_STATE_RUNNING || status.attempt() != report.attempt()) {
    // A straggler from an attempt that ended: tell it to stop.
    ack.set_stop(true);
    return ack;
  }
  const v1::StageAssignment* stage = StageOf(*rt, report.worker_id());
  if (stage == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("worker '", report.worker_id(),
                                                      "' is not assigned to job '", report.job(),
                                                      "' attempt ", report.attempt()));
  }
  workers_->Heartbeat(report.worker_id());
  const int num_workers = status.assignments_size();
  const ProgressTracker::Added added =
      rt->progress.Add(report, {stage->data_rank(), stage->device()});
  ack.set_next_iteration(added.next_iteration);
  if (!added.taken) {
    // One of this stage's earlier reports is missing: nothing of this one
    // counts (not even its checkpoint or finish) until the stage has sent
    // again from next_iteration.
    ack.set_durable_iteration(rt->progress.last_complete());
    return ack;
  }
  Mutation m = Begin(*rt);
  bool changed = false;

  // Records for every iteration that is now complete (usually the one this
  // report completes; more when an earlier commit failed), in order. They
  // count as complete only once committed: a failed commit leaves them to
  // the next report.
  const int64_t complete_through = rt->progress.CompleteThrough(num_workers);
  for (int64_t it = rt->progress.last_complete() + 1; it <= complete_through; ++it) {
    CompleteIteration(rt, it, rt->progress.Ready(it), &m);
    changed = true;
  }

  std::vector<std::string> workers;
  for (const v1::StageAssignment& a : status.assignments()) workers.push_back(a.worker_id());
  const int64_t durable =
      rt->progress.Checkpointed(report.worker_id(), report.checkpoint_iteration(), workers);
  if (durable > m.job.status().checkpoint_iteration()) {
    m.job.mutable_status()->set_checkpoint_iteration(durable);
    m.job.mutable_status()->set_checkpoint_pipeline(m.job.status().pipeline() > 0
                                                        ? m.job.status().pipeline()
                                                        : m.job.spec().parallel().pipeline());
    AddEvent(&m, "Checkpointed",
             absl::StrCat("checkpoint of iteration ", durable, " written by all ", num_workers,
                          " workers"));
    changed = true;
  }

  // A finished stage has delivered every report before its last, so once
  // all have finished every iteration is complete (recorded just above).
  bool succeeded = false;
  if (report.finished() && rt->progress.Finished(report.worker_id(), num_workers) &&
      complete_through >= rt->progress.Newest()) {
    s = Transition(&m, v1::JOB_STATE_SUCCEEDED, "Completed",
                   absl::StrCat("completed ", m.job.status().iteration(), " iterations"));
    if (!s.ok()) return s;
    succeeded = true;
    changed = true;
  }
  if (changed) {
    s = Commit(rt, std::move(m));
    if (!s.ok()) return s;
  }
  rt->progress.MarkComplete(complete_through);
  ack.set_durable_iteration(rt->progress.last_complete());
  if (succeeded) {
    EndAttempt(rt, "", /*send_stop=*/false);
    rt->plan.reset();
    AdmitPending();
  }
  return ack;
}

void JobController::CompleteIteration(JobRuntime* rt, int64_t iteration,
                                      const ProgressTracker::Reports& reports, Mutation* m) {
  v1::IterationRecord* rec = &m->iterations.emplace_back(CombineReports(reports, iteration));
  rec->set_sequence(m->next_sequence++);
  rec->set_attempt(rt->job.status().attempt());
  SetTimestamp(clock_->Now(), rec->mutable_time());
  const bool has_loss = std::any_of(reports.begin(), reports.end(),
                                    [](const auto& kv) { return kv.second.has_loss(); });
  v1::JobStatus* st = m->job.mutable_status();
  // Iterations complete in order (coordinator/progress_tracker.h); a redone
  // one (after a recovery) replaces the stored record of that iteration.
  if (iteration >= st->iteration()) {
    st->set_iteration(iteration);
    if (has_loss) st->set_loss(rec->loss());
    st->set_tokens_per_second(rec->tokens_per_second());
    *st->mutable_devices() = rec->devices();
  }
  // A policy is in force once every device ran an iteration under it.
  const int64_t min_generation = OldestGeneration(reports);
  if (min_generation > st->observed_generation() &&
      min_generation <= m->job.metadata().generation()) {
    auto it = rt->policies.upper_bound(min_generation);
    if (it != rt->policies.begin()) {
      --it;
      *st->mutable_policy() = it->second;
    }
    st->set_observed_generation(min_generation);
    AddEvent(m, "PolicyApplied",
             absl::StrFormat("generation %d (offload_ratio %.3g) in force from "
                             "iteration %d on all %d workers",
                             min_generation, st->policy().offload_ratio(), iteration,
                             static_cast<int>(reports.size())),
             iteration);
    // Its workers' own word for when they received it (reports may lag).
    int64_t received = 0;
    for (const auto& [key, r] : reports) {
      if (r.policy_generation() == min_generation) {
        received = std::max(received, r.policy_received_iteration());
      }
    }
    m->events.back().set_policy_received_iteration(received);
  }
}

absl::Status JobController::ReportFault(const v1::FaultReport& report) {
  absl::Status s = CheckName(report.job());
  if (!s.ok()) return s;
  if (!v1::FaultKind_IsValid(report.kind())) {
    return absl::InvalidArgumentError(absl::StrCat("kind has unknown value ", report.kind()));
  }
  AdmitOnExit admit(this);
  // Out of memory: plan for a smaller budget first, with the lock released
  // (a plan can take seconds), against the job as it is now.
  std::optional<absl::StatusOr<SharedPlan>> smaller;
  std::optional<PlanBasis> basis;
  if (report.kind() == v1::FAULT_OUT_OF_MEMORY) {
    v1::JobSpec spec;
    {
      absl::MutexLock lock(&mu_);
      JobRuntime* rt = Find(report.job());
      if (rt != nullptr && rt->job.status().state() == v1::JOB_STATE_RUNNING &&
          rt->job.status().attempt() == report.attempt()) {
        basis = BasisOf(*rt);
        const int64_t current =
            rt->plan ? rt->plan->budget_bytes : rt->job.status().hbm_budget_bytes();
        spec = EffectiveSpec(rt->job.spec(), rt->job.status());
        spec.mutable_memory()->set_hbm_budget_bytes(OomBudget(current));
      }
    }
    if (basis) {
      smaller = spec.memory().hbm_budget_bytes() > 0
                    ? replanner_->PlanSpec(spec, "memory.hbm_budget", PlanStop())
                    : absl::StatusOr<SharedPlan>(absl::InvalidArgumentError("no budget left"));
      if (absl::IsCancelled(smaller->status())) {
        smaller = absl::DeadlineExceededError(PlanDeadlineMessage(spec));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(report.job());
  if (rt == nullptr) return NotFound(report.job());
  if (rt->job.status().state() != v1::JOB_STATE_RUNNING ||
      rt->job.status().attempt() != report.attempt()) {
    return absl::OkStatus();  // that attempt is already over
  }
  if (basis && !(*basis == BasisOf(*rt))) {
    return absl::AbortedError(absl::StrCat("job '", report.job(),
                                           "' changed while its out-of-memory re-plan was made; "
                                           "report the fault again"));
  }
  const v1::StageAssignment* stage = StageOf(*rt, report.worker_id());
  if (stage == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("worker '", report.worker_id(),
                                                      "' is not assigned to job '", report.job(),
                                                      "' attempt ", report.attempt()));
  }
  // Keep a hostile or runaway message from bloating the store.
  std::string message = report.message().substr(0, 4096);
  FailAttempt(
      rt, "Fault",
      absl::StrCat("worker ", report.worker_id(), " (stage ", stage->device(), ", data rank ",
                   stage->data_rank(), ") reported ", v1::FaultKind_Name(report.kind()),
                   " at iteration ", report.iteration(), ": ", message),
      smaller ? &*smaller : nullptr, PermanentReason(report.kind()));
  return absl::OkStatus();
}

void JobController::Tick() {
  std::vector<std::pair<std::string, WorkerBinding>> dead = workers_->ExpireDead();
  AdmitOnExit admit(this);
  absl::MutexLock lock(&mu_);
  for (const auto& [id, binding] : dead) {
    if (binding.job.empty()) continue;
    LoseWorker(id, binding, "stopped sending heartbeats");
  }
  AdmitPending();
  PublishGauges();
}

}  // namespace chronos::coordinator
