#include "coordinator/job_controller.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/job_lifecycle.h"
#include "coordinator/request_checks.h"
#include "core/device_profile.h"
#include "core/job_spec.h"
#include "core/path_roots.h"
#include "core/schedule_proto.h"
#include "rpc/limits.h"

namespace chronos::coordinator {
namespace {

constexpr size_t kMaxRequestIdBytes = 128;

bool SameSpec(const v1::JobSpec& a, const v1::JobSpec& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

}  // namespace

JobController::JobController(JobStore* store, WorkerRegistry* workers, KvStore* kv,
                             Metrics* metrics, Clock* clock, absl::Duration poll_interval,
                             RecoveryOptions recovery, std::shared_ptr<Replanner> replanner,
                             PathRoots roots, PlanningOptions planning)
    : store_(store),
      workers_(workers),
      kv_(kv),
      metrics_(metrics),
      clock_(clock),
      poll_interval_(poll_interval),
      recovery_(recovery),
      replanner_(replanner ? std::move(replanner) : std::make_shared<Replanner>()),
      roots_(std::move(roots)),
      planning_(planning),
      rng_(std::random_device()()),
      planner_(planning.threads) {}

JobController::~JobController() { planner_.Shutdown(); }

// ---------------------------------------------------------------- mutations

JobController::Mutation JobController::Begin(const JobRuntime& rt) const {
  Mutation m;
  m.job = rt.job;
  m.next_sequence = rt.last_sequence + 1;
  return m;
}

void JobController::AddEvent(Mutation* m, const std::string& type, const std::string& message,
                             int64_t iteration) {
  v1::JobEvent* e = &m->events.emplace_back();
  e->set_sequence(m->next_sequence++);
  SetTimestamp(clock_->Now(), e->mutable_time());
  e->set_type(type);
  e->set_message(message);
  e->set_state(m->job.status().state());
  e->set_iteration(iteration);
  e->set_policy_received_iteration(-1);
}

absl::Status JobController::Transition(Mutation* m, v1::JobState to, const std::string& reason,
                                       const std::string& message) {
  absl::Status s = ApplyTransition(m->job.mutable_status(), to, reason, message, clock_->Now());
  if (!s.ok()) return s;
  m->transitions.push_back(to);
  // Event types are the state entered, in the conditions' spelling.
  std::string type = JobStateName(to);
  for (size_t i = 1; i < type.size(); ++i) type[i] = absl::ascii_tolower(type[i]);
  AddEvent(m, type, message);
  return absl::OkStatus();
}

absl::Status JobController::Commit(JobRuntime* rt, Mutation m) {
  JobWrite write;
  write.resource_version = resource_version_ + 1;
  m.job.mutable_metadata()->set_resource_version(absl::StrCat(write.resource_version));
  write.job = m.job;
  write.events = m.events;
  write.iterations = m.iterations;
  const bool create = rt->job.metadata().uid().empty();
  absl::Status s = create ? store_->Create(write) : store_->Update(write);
  if (!s.ok()) return s;
  // Visible only after it is durable.
  resource_version_ = write.resource_version;
  rt->job = std::move(m.job);
  rt->last_sequence = m.next_sequence - 1;
  for (v1::JobState to : m.transitions) metrics_->RecordTransition(to);
  PublishGauges();
  changes_.Notify();
  return absl::OkStatus();
}

JobController::PlanBasis JobController::BasisOf(const JobRuntime& rt) const {
  const v1::Job& j = rt.job;
  return PlanBasis{j.metadata().name(),  j.metadata().uid(), j.metadata().generation(),
                   j.status().attempt(), j.status().state(), j.status().hbm_budget_bytes()};
}

void JobController::PublishGauges() {
  std::map<v1::JobState, int> counts;
  for (v1::JobState s : {v1::JOB_STATE_PLANNING, v1::JOB_STATE_PENDING, v1::JOB_STATE_RUNNING,
                         v1::JOB_STATE_RECOVERING, v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED,
                         v1::JOB_STATE_CANCELLED}) {
    counts[s] = 0;
  }
  for (const auto& [name, rt] : jobs_) ++counts[rt->job.status().state()];
  for (const auto& [state, n] : counts) metrics_->SetJobCount(state, n);
  if (counts != published_counts_) {
    std::vector<Metrics::JobSample> samples;
    samples.reserve(jobs_.size());
    for (const auto& [name, rt] : jobs_) {
      const v1::JobStatus& st = rt->job.status();
      const double done = st.has_completion_time()
                              ? st.completion_time().seconds() + st.completion_time().nanos() * 1e-9
                              : 0;
      samples.push_back(Metrics::JobSample{name, st.state(), done});
    }
    metrics_->SetJobStates(samples);
    published_counts_ = counts;
  }
  for (const auto& [state, n] : workers_->Counts()) {
    metrics_->SetWorkerCount(state, n);
  }
  metrics_->SetWorkerStates(workers_->StatesByName());
}

std::string JobController::NewUid() {
  // A random (version 4) UUID.
  const uint64_t hi = (rng_() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  const uint64_t lo = (rng_() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

JobController::JobRuntime* JobController::Find(const std::string& name) {
  auto it = jobs_.find(name);
  return it == jobs_.end() ? nullptr : it->second.get();
}

// --------------------------------------------------------------------- load

absl::Status JobController::Load() {
  absl::StatusOr<StoreSnapshot> snapshot = store_->Load();
  if (!snapshot.ok()) return snapshot.status();
  // SharedPlan outside the lock; nothing is served yet.
  std::vector<std::pair<StoredJob, absl::StatusOr<std::shared_ptr<const PlannedSchedule>>>> loaded;
  for (StoredJob& stored : snapshot->jobs) {
    absl::StatusOr<std::shared_ptr<const PlannedSchedule>> plan =
        std::shared_ptr<const PlannedSchedule>();
    const v1::JobState state = stored.job.status().state();
    // A job still PLANNING is planned again in the background, below.
    if (!IsTerminal(state) && state != v1::JOB_STATE_PLANNING) {
      const v1::JobSpec spec = EffectiveSpec(stored.job.spec(), stored.job.status());
      plan = replanner_->PlanSpec(spec, "memory.hbm_budget", PlanStop());
      if (absl::IsCancelled(plan.status()))
        plan = absl::DeadlineExceededError(PlanDeadlineMessage(spec));
    }
    loaded.emplace_back(std::move(stored), std::move(plan));
  }
  std::vector<PlanningTask> to_plan;
  {
    absl::MutexLock lock(&mu_);
    resource_version_ = snapshot->resource_version;
    for (auto& [stored, plan] : loaded) {
      auto rt = std::make_unique<JobRuntime>();
      rt->job = std::move(stored.job);
      rt->order = next_order_++;
      rt->last_sequence = stored.last_sequence;
      const std::string name = rt->job.metadata().name();
      resource_version_ = std::max<int64_t>(
          resource_version_,
          std::strtoll(rt->job.metadata().resource_version().c_str(), nullptr, 10));
      if (!rt->job.metadata().request_id().empty()) {
        by_request_id_[rt->job.metadata().request_id()] = name;
      }
      JobRuntime* r = rt.get();
      jobs_[name] = std::move(rt);
      const v1::JobState state = r->job.status().state();
      if (IsTerminal(state)) continue;
      if (state == v1::JOB_STATE_PLANNING) {
        Mutation m = Begin(*r);
        AddEvent(&m, "CoordinatorRestarted",
                 "the coordinator restarted while the job was being planned; planning again");
        absl::Status s = Commit(r, std::move(m));
        if (!s.ok()) return s;
        to_plan.push_back(BeginPlanning(r));
        continue;
      }
      if (!plan.ok()) {
        // The spec was accepted by an older planner; say so instead of
        // keeping a job that can never start.
        Mutation m = Begin(*r);
        if (Transition(&m, v1::JOB_STATE_FAILED, "PlanFailed",
                       absl::StrCat("after a coordinator restart the job could "
                                    "not be planned again: ",
                                    plan.status().message()))
                .ok()) {
          Commit(r, std::move(m)).IgnoreError();
        }
        continue;
      }
      r->plan = *plan;
      if (state == v1::JOB_STATE_RECOVERING) {
        // Its attempt was stopped before the restart; workers get a fresh
        // grace period to come back before it is re-planned narrower.
        r->recover_after = clock_->Now();
        r->recovering_since = clock_->Now();
      }
      if (r->job.status().has_policy()) {
        r->policies[r->job.status().policy().generation()] = r->job.status().policy();
      }
      if (state == v1::JOB_STATE_RUNNING) {
        const v1::JobStatus& st = r->job.status();
        for (const v1::StageAssignment& a : st.assignments()) {
          workers_->Restore(a.worker_id(), WorkerBinding{name, st.attempt()});
        }
        kv_->OpenScope(StorePrefix(name, st.attempt()));
        // What the workers were told is durable: the status's iteration is
        // committed with the record of that iteration, and iterations
        // complete in order, so it is the attempt's newest stored record
        // (or the checkpoint it resumed from). Workers send everything
        // after it again.
        r->progress = ProgressTracker(st.iteration());
        Mutation m = Begin(*r);
        AddEvent(&m, "CoordinatorRestarted",
                 absl::StrCat("the coordinator restarted; attempt ", st.attempt(),
                              " continues once its ", st.assignments_size(), " workers re-attach"));
        absl::Status s = Commit(r, std::move(m));
        if (!s.ok()) return s;
      }
    }
    PublishGauges();
  }
  // Jobs are served before their plans land: they wait in PLANNING.
  EnqueuePlanning(std::move(to_plan));
  return absl::OkStatus();
}

// ------------------------------------------------------------------- submit

absl::StatusOr<v1::Job> JobController::SubmitJob(const v1::SubmitJobRequest& request) {
  AdmitOnExit admit(this);
  if (!request.has_spec()) return absl::InvalidArgumentError("spec is required");
  const size_t size = request.spec().ByteSizeLong();
  if (size > static_cast<size_t>(rpc::kMaxJobSpecBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec is ", size, " bytes; the limit is ", rpc::kMaxJobSpecBytes, " bytes"));
  }
  const std::string& request_id = request.request_id();
  if (request_id.size() > kMaxRequestIdBytes || !Printable(request_id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request_id must be at most ", kMaxRequestIdBytes, " printable ASCII characters (a UUID)"));
  }
  if (!request_id.empty()) {
    absl::MutexLock lock(&mu_);
    auto it = by_request_id_.find(request_id);
    if (it != by_request_id_.end()) {
      if (JobRuntime* rt = Find(it->second)) return rt->job;
    }
  }
  v1::JobSpec spec = request.spec();
  ApplyJobSpecDefaults(&spec);
  absl::Status valid = ValidateJobSpec(spec);
  if (!valid.ok()) return AsInvalidArgument(valid);
  valid = CheckUnderRoots(spec.data().path(), "", roots_.data, "data.path");
  if (valid.ok()) {
    valid = CheckUnderRoots(spec.training().checkpoint_dir(), "", roots_.checkpoints,
                            "training.checkpoint_dir");
  }
  if (!valid.ok()) return valid;
  // What the planner would refuse at once is refused here, without a job.
  if (absl::StatusOr<v1::DeviceProfile> profile = ResolveDeviceProfile(spec.device());
      !profile.ok()) {
    return AsInvalidArgument(profile.status());
  }
  // The plan itself is made in the background (it may take minutes); the
  // job waits in PLANNING, and a spec that cannot be planned fails it.
  std::vector<PlanningTask> to_plan;
  JobRuntime* r = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (!request_id.empty()) {
      auto it = by_request_id_.find(request_id);
      if (it != by_request_id_.end()) {
        if (JobRuntime* rt = Find(it->second)) return rt->job;
      }
    }
    if (JobRuntime* existing = Find(spec.name())) {
      if (SameSpec(existing->job.spec(), spec)) return existing->job;
      return absl::AlreadyExistsError(
          absl::StrCat("job '", spec.name(),
                       "' already exists with a different spec; choose another name, or "
                       "delete the finished job first (DeleteJob)"));
    }
    if (planner_.Outstanding() >= static_cast<size_t>(planning_.max_waiting)) {
      return absl::UnavailableError(
          absl::StrCat(planner_.Outstanding(),
                       " jobs are waiting to be planned (the coordinator's "
                       "limit is ",
                       planning_.max_waiting, "); submit again once some are planned"));
    }
    auto rt = std::make_unique<JobRuntime>();
    rt->order = next_order_++;
    const absl::Time now = clock_->Now();
    Mutation m = Begin(*rt);
    v1::JobMetadata* md = m.job.mutable_metadata();
    md->set_name(spec.name());
    md->set_uid(NewUid());
    md->set_generation(1);
    md->set_request_id(request_id);
    SetTimestamp(now, md->mutable_created_at());
    *m.job.mutable_spec() = spec;
    v1::JobStatus* st = m.job.mutable_status();
    st->set_state(v1::JOB_STATE_PLANNING);
    st->set_message("planning the schedule and memory policy");
    SetCondition(st, "Planned", false, "Planning", st->message(), now);
    m.transitions.push_back(v1::JOB_STATE_PLANNING);
    AddEvent(&m, "Submitted",
             absl::StrCat("schedule ", spec.schedule().kind(), ", ", spec.parallel().pipeline(),
                          " stages x ", spec.parallel().data(), " replicas; planning"));
    r = rt.get();
    absl::Status s = Commit(r, std::move(m));
    if (!s.ok()) return s;
    jobs_[spec.name()] = std::move(rt);
    if (!request_id.empty()) by_request_id_[request_id] = spec.name();
    to_plan.push_back(BeginPlanning(r));
    PublishGauges();
  }
  EnqueuePlanning(std::move(to_plan));
  // The job as it is now: PLANNING, unless the plan already landed (or,
  // with an inline planner, the job was admitted).
  absl::MutexLock lock(&mu_);
  JobRuntime* now_rt = Find(spec.name());
  if (now_rt == nullptr) return NotFound(spec.name());  // deleted meanwhile
  return now_rt->job;
}

// ---------------------------------------------------------- control queries

absl::StatusOr<v1::Job> JobController::GetJob(const v1::GetJobRequest& request) {
  absl::Status s = CheckName(request.name());
  if (!s.ok()) return s;
  v1::Job job;
  {
    absl::MutexLock lock(&mu_);
    JobRuntime* rt = Find(request.name());
    if (rt == nullptr) return NotFound(request.name());
    job = rt->job;
  }
  if (request.include_events()) {
    absl::StatusOr<std::vector<v1::JobEvent>> events = store_->Events(request.name(), 0, 0);
    if (!events.ok()) return events.status();
    for (v1::JobEvent& e : *events) *job.add_events() = std::move(e);
  }
  if (request.include_iterations()) {
    absl::StatusOr<std::vector<v1::IterationRecord>> its = store_->Iterations(request.name(), 0, 0);
    if (!its.ok()) return its.status();
    // Stored in history order; listed by iteration (a redone iteration has
    // a later sequence than the ones after it that it did not redo).
    std::stable_sort(its->begin(), its->end(),
                     [](const v1::IterationRecord& a, const v1::IterationRecord& b) {
                       return a.iteration() < b.iteration();
                     });
    for (v1::IterationRecord& r : *its) *job.add_iterations() = std::move(r);
  }
  return job;
}

absl::StatusOr<v1::ListJobsResponse> JobController::ListJobs(const v1::ListJobsRequest& request) {
  if (!v1::JobState_IsValid(request.state())) {
    return absl::InvalidArgumentError(absl::StrCat("state has unknown value ", request.state()));
  }
  absl::MutexLock lock(&mu_);
  std::vector<const JobRuntime*> all;
  for (const auto& [name, rt] : jobs_) {
    if (request.state() == v1::JOB_STATE_UNSPECIFIED ||
        rt->job.status().state() == request.state()) {
      all.push_back(rt.get());
    }
  }
  std::sort(all.begin(), all.end(),
            [](const JobRuntime* a, const JobRuntime* b) { return a->order < b->order; });
  v1::ListJobsResponse response;
  for (const JobRuntime* rt : all) *response.add_jobs() = rt->job;
  response.set_resource_version(absl::StrCat(resource_version_));
  return response;
}

absl::StatusOr<v1::GetScheduleResponse> JobController::GetSchedule(const std::string& name) {
  absl::Status s = CheckName(name);
  if (!s.ok()) return s;
  std::shared_ptr<const PlannedSchedule> plan;
  v1::JobSpec spec;
  {
    absl::MutexLock lock(&mu_);
    JobRuntime* rt = Find(name);
    if (rt == nullptr) return NotFound(name);
    if (rt->job.status().state() == v1::JOB_STATE_PLANNING) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", name, "' is still being planned; ask again once it is PENDING"));
    }
    plan = rt->plan;
    spec = EffectiveSpec(rt->job.spec(), rt->job.status());
  }
  if (!plan) {
    // Finished jobs drop their plan; rebuilding it is pure and cheap enough
    // for an on-demand query.
    absl::StatusOr<std::shared_ptr<const PlannedSchedule>> planned =
        replanner_->PlanSpec(spec, "memory.hbm_budget", PlanStop());
    if (!planned.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job '", name, "' cannot be planned any more: ", planned.status().message()));
    }
    plan = *planned;
  }
  v1::GetScheduleResponse response;
  *response.mutable_schedule() = ScheduleToProto(plan->schedule);
  *response.mutable_plan() = plan->report;
  return response;
}

// ------------------------------------------------------- control mutations

absl::StatusOr<v1::Job> JobController::CancelJob(const std::string& name) {
  AdmitOnExit admit(this);
  absl::Status s = CheckName(name);
  if (!s.ok()) return s;
  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(name);
  if (rt == nullptr) return NotFound(name);
  const v1::JobState state = rt->job.status().state();
  // Cancelling a finished job is a no-op, so scripts may cancel blindly.
  if (IsTerminal(state)) return rt->job;
  Mutation m = Begin(*rt);
  s = Transition(&m, v1::JOB_STATE_CANCELLED, "Cancelled", "cancelled by the user");
  if (!s.ok()) return s;
  s = Commit(rt, std::move(m));
  if (!s.ok()) return s;
  // A recovering job's attempt was already stopped.
  if (state == v1::JOB_STATE_RUNNING) {
    EndAttempt(rt, "cancelled by the user", /*send_stop=*/true);
  }
  // A job being planned: its planner stops at its next poll.
  if (rt->planning_cancel) {
    rt->planning_cancel->store(true);
    rt->planning_cancel.reset();
  }
  rt->plan.reset();
  AdmitPending();
  return rt->job;
}

absl::StatusOr<v1::Job> JobController::DeleteJob(const std::string& name) {
  absl::Status s = CheckName(name);
  if (!s.ok()) return s;
  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(name);
  if (rt == nullptr) return NotFound(name);
  if (!IsTerminal(rt->job.status().state())) {
    return absl::FailedPreconditionError(absl::StrCat("job '", name, "' is ",
                                                      JobStateName(rt->job.status().state()),
                                                      "; cancel it before deleting it"));
  }
  s = store_->Delete(name, resource_version_ + 1);
  if (!s.ok()) return s;
  ++resource_version_;
  v1::Job job = std::move(rt->job);
  if (!job.metadata().request_id().empty()) {
    by_request_id_.erase(job.metadata().request_id());
  }
  jobs_.erase(name);
  PublishGauges();
  changes_.Notify();
  return job;
}

absl::StatusOr<v1::Job> JobController::UpdatePolicy(const v1::UpdatePolicyRequest& request) {
  absl::Status s = CheckName(request.name());
  if (!s.ok()) return s;
  if (request.has_offload_ratio() &&
      !(request.offload_ratio() >= 0.0 && request.offload_ratio() <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("offload_ratio must be in [0, 1] (got ", request.offload_ratio(), ")"));
  }
  if (!v1::RecomputeMode_IsValid(request.recompute())) {
    return absl::InvalidArgumentError(
        absl::StrCat("recompute has unknown value ", request.recompute()));
  }
  if (!request.has_offload_ratio() && request.recompute() == v1::RECOMPUTE_AUTO) {
    return absl::InvalidArgumentError("nothing to change: set offload_ratio and/or recompute");
  }
  v1::JobSpec spec;
  v1::JobStatus status_before;
  int64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    JobRuntime* rt = Find(request.name());
    if (rt == nullptr) return NotFound(request.name());
    if (IsTerminal(rt->job.status().state())) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", request.name(), "' is ", JobStateName(rt->job.status().state()),
                       "; only pending or running jobs take policy updates"));
    }
    if (rt->job.status().state() == v1::JOB_STATE_PLANNING) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", request.name(),
                       "' is still being planned; update its policy once it is PENDING"));
    }
    generation = rt->job.metadata().generation();
    if (request.expected_generation() != 0 && request.expected_generation() != generation) {
      return absl::AbortedError(absl::StrCat(
          "job '", request.name(), "' is at generation ", generation, ", not the expected ",
          request.expected_generation(), "; read it again and retry"));
    }
    spec = rt->job.spec();
    status_before = rt->job.status();
  }
  // The planner runs without the lock: it may take a while for big
  // pipelines and must not stall heartbeats and progress reports.
  if (request.has_offload_ratio()) {
    spec.mutable_memory()->set_offload_ratio(request.offload_ratio());
  }
  if (request.recompute() != v1::RECOMPUTE_AUTO) {
    spec.mutable_memory()->set_recompute(request.recompute());
  }
  s = ValidateJobSpec(spec);
  if (!s.ok()) return AsInvalidArgument(s);
  const v1::JobSpec effective = EffectiveSpec(spec, status_before);
  absl::StatusOr<std::shared_ptr<const PlannedSchedule>> plan = replanner_->PlanSpec(
      effective, request.has_offload_ratio() ? "offload_ratio" : "recompute", PlanStop());
  if (absl::IsCancelled(plan.status())) {
    return absl::DeadlineExceededError(PlanDeadlineMessage(effective));
  }
  if (!plan.ok()) return plan.status();

  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(request.name());
  if (rt == nullptr) return NotFound(request.name());
  if (rt->job.metadata().generation() != generation ||
      rt->job.status().pipeline() != status_before.pipeline() ||
      rt->job.status().data() != status_before.data() ||
      rt->job.status().hbm_budget_bytes() != status_before.hbm_budget_bytes()) {
    return absl::AbortedError(
        absl::StrCat("job '", request.name(), "' changed while the new policy was planned (",
                     "generation ", rt->job.metadata().generation(), "); retry"));
  }
  const v1::JobState state = rt->job.status().state();
  if (IsTerminal(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job '", request.name(), "' finished while the new policy was planned"));
  }
  Mutation m = Begin(*rt);
  const int64_t new_generation = generation + 1;
  m.job.mutable_metadata()->set_generation(new_generation);
  *m.job.mutable_spec() = spec;
  v1::PolicyState policy;
  policy.set_offload_ratio(EffectiveOffloadRatio(spec, **plan));
  policy.set_recompute(spec.memory().recompute());
  policy.set_generation(new_generation);
  // The newest iteration any stage has finished: workers get the push
  // now and apply it at their next boundary, so "applied within one
  // iteration" is measured from here.
  const int64_t newest = rt->progress.Newest();
  AddEvent(&m, "PolicyUpdated",
           absl::StrFormat("generation %d: offload_ratio %.3g, recompute %s%s", new_generation,
                           policy.offload_ratio(), v1::RecomputeMode_Name(policy.recompute()),
                           state == v1::JOB_STATE_RUNNING
                               ? absl::StrFormat("; pushed after iteration %d, applies from "
                                                 "the next iteration boundary",
                                                 newest)
                               : std::string()),
           state == v1::JOB_STATE_RUNNING ? newest : -1);
  if (state != v1::JOB_STATE_RUNNING) {
    // Nothing runs now: the next attempt starts with this policy.
    *m.job.mutable_status()->mutable_policy() = policy;
    m.job.mutable_status()->set_observed_generation(new_generation);
  }
  s = Commit(rt, std::move(m));
  if (!s.ok()) return s;
  rt->plan = *plan;
  rt->recovery_plans.clear();
  rt->policies[new_generation] = policy;
  metrics_->RecordPolicyUpdate();
  if (state == v1::JOB_STATE_RUNNING) {
    for (const v1::StageAssignment& a : rt->job.status().assignments()) {
      v1::WorkerCommand cmd;
      v1::PolicyUpdate* u = cmd.mutable_policy();
      u->set_job(request.name());
      u->set_attempt(rt->job.status().attempt());
      u->set_generation(new_generation);
      *u->mutable_schedule() = ScheduleToProto(rt->plan->schedule, a.device());
      u->set_offload_ratio(policy.offload_ratio());
      workers_->Send(a.worker_id(), std::move(cmd));
    }
  }
  return rt->job;
}

// -------------------------------------------------------------------- watch

absl::Status JobController::WatchJob(const v1::WatchJobRequest& request,
                                     const std::function<bool(const v1::JobUpdate&)>& write,
                                     const std::function<bool()>& cancelled) {
  absl::Status s = CheckName(request.name());
  if (!s.ok()) return s;
  if (request.since_sequence() < 0) {
    return absl::InvalidArgumentError("since_sequence must be >= 0");
  }
  int64_t sent_sequence = request.since_sequence();
  std::string sent_version;
  while (true) {
    absl::StatusOr<int64_t> seen_changes = changes_.Count();
    if (!seen_changes.ok()) return seen_changes.status();
    v1::Job snapshot;
    int64_t last_sequence;
    {
      absl::MutexLock lock(&mu_);
      JobRuntime* rt = Find(request.name());
      if (rt == nullptr) {
        // Deleted while watched: the watch simply ends.
        if (!sent_version.empty()) return absl::OkStatus();
        return NotFound(request.name());
      }
      snapshot = rt->job;
      last_sequence = rt->last_sequence;
    }
    // History first (everything the snapshot already reflects is in the
    // store, because commits reach the store before memory).
    if (sent_sequence < last_sequence) {
      absl::StatusOr<bool> full_page =
          SendHistoryPage(store_, request.name(), &sent_sequence, write, cancelled);
      if (absl::IsNotFound(full_page.status())) return absl::OkStatus();
      if (!full_page.ok()) return full_page.status();
      if (*full_page) continue;
    }
    if (snapshot.metadata().resource_version() != sent_version) {
      v1::JobUpdate update;
      *update.mutable_job() = snapshot;
      update.set_sequence(std::min(sent_sequence, last_sequence));
      if (!write(update)) return absl::CancelledError("the client went away");
      sent_version = snapshot.metadata().resource_version();
    }
    if (IsTerminal(snapshot.status().state()) && sent_sequence >= last_sequence) {
      return absl::OkStatus();
    }
    if (cancelled()) return absl::CancelledError("the watch was cancelled");
    changes_.Wait(*seen_changes, poll_interval_);
  }
}

void JobController::Shutdown() {
  changes_.Shutdown();
  planner_.Shutdown();
}

}  // namespace chronos::coordinator
