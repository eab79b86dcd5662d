#include "coordinator/job_controller.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/device_profile.h"
#include "core/job_spec.h"
#include "core/job_width.h"
#include "core/rpc/limits.h"
#include "core/schedule_proto.h"
#include "coordinator/job_lifecycle.h"

namespace chronos::coordinator {
namespace {

// Rows per store read while replaying history, so one watcher of a long job
// never holds all of it in memory at once.
constexpr int kHistoryPage = 512;
constexpr size_t kMaxRequestIdBytes = 128;
// Iterations whose reports are incomplete are kept at most this far behind
// the newest one (a stage cannot lag further in a pipeline).
constexpr int64_t kMaxPartialIterations = 64;

absl::Status AsInvalidArgument(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
      return status;
    default:
      return absl::InvalidArgumentError(status.message());
  }
}

std::string FormatBytes(int64_t bytes) {
  const double gib = static_cast<double>(bytes) / (1LL << 30);
  if (gib >= 1) return absl::StrFormat("%.2f GiB", gib);
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

// Plans `spec` (defaults applied, validated) with its own schedule kind.
// Every way the spec cannot run is kInvalidArgument naming a field;
// `field` names the knob the caller changed when the plan does not fit.
absl::StatusOr<std::shared_ptr<const PlannedSchedule>> PlanForSpec(
    const v1::JobSpec& spec, const std::string& field) {
  absl::StatusOr<v1::DeviceProfile> profile = ResolveDeviceProfile(spec.device());
  if (!profile.ok()) return AsInvalidArgument(profile.status());
  absl::StatusOr<PlannedSchedule> plan =
      PlanSchedule(spec, *profile, spec.schedule().kind());
  if (!plan.ok()) return AsInvalidArgument(plan.status());
  if (!plan->fits) {
    std::string why = plan->report.error();
    if (why.empty()) why = "the planner found no policy that fits";
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": schedule ", spec.schedule().kind(),
        " does not fit the HBM budget of ", FormatBytes(plan->budget_bytes),
        " per device: ", why,
        ". Raise memory.hbm_budget, allow memory.recompute / "
        "memory.offload_ratio, or use more pipeline stages"));
  }
  return std::shared_ptr<const PlannedSchedule>(
      std::make_shared<PlannedSchedule>(std::move(*plan)));
}

bool SameSpec(const v1::JobSpec& a, const v1::JobSpec& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

absl::Status NotFound(const std::string& name) {
  return absl::NotFoundError(absl::StrCat(
      "job '", name, "' not found (chronosctl list shows the jobs)"));
}

absl::Status CheckName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name is required");
  if (name.size() > 253 || !Printable(name)) {
    return absl::InvalidArgumentError("name is not a valid job name");
  }
  return absl::OkStatus();
}

}  // namespace

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

JobController::JobController(JobStore* store, WorkerRegistry* workers,
                             KvStore* kv, Metrics* metrics, Clock* clock,
                             absl::Duration poll_interval, RecoveryOptions recovery)
    : store_(store),
      workers_(workers),
      kv_(kv),
      metrics_(metrics),
      clock_(clock),
      poll_interval_(poll_interval),
      recovery_(recovery),
      rng_(std::random_device()()) {}

// ---------------------------------------------------------------- mutations

JobController::Mutation JobController::Begin(const JobRuntime& rt) const {
  Mutation m;
  m.job = rt.job;
  m.next_sequence = rt.last_sequence + 1;
  return m;
}

void JobController::AddEvent(Mutation* m, const std::string& type,
                             const std::string& message, int64_t iteration) {
  v1::JobEvent* e = &m->events.emplace_back();
  e->set_sequence(m->next_sequence++);
  SetTimestamp(clock_->Now(), e->mutable_time());
  e->set_type(type);
  e->set_message(message);
  e->set_state(m->job.status().state());
  e->set_iteration(iteration);
}

absl::Status JobController::Transition(Mutation* m, v1::JobState to,
                                       const std::string& reason,
                                       const std::string& message) {
  absl::Status s = ApplyTransition(m->job.mutable_status(), to, reason, message,
                                   clock_->Now());
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
  m.job.mutable_metadata()->set_resource_version(
      absl::StrCat(write.resource_version));
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
  NotifyWatchers();
  return absl::OkStatus();
}

void JobController::NotifyWatchers() {
  absl::MutexLock lock(&notify_mu_);
  ++change_count_;
  changed_.SignalAll();
}

void JobController::PublishGauges() {
  std::map<v1::JobState, int> counts;
  for (v1::JobState s :
       {v1::JOB_STATE_PENDING, v1::JOB_STATE_RUNNING, v1::JOB_STATE_RECOVERING,
        v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    counts[s] = 0;
  }
  for (const auto& [name, rt] : jobs_) ++counts[rt->job.status().state()];
  for (const auto& [state, n] : counts) metrics_->SetJobCount(state, n);
  for (const auto& [state, n] : workers_->Counts()) {
    metrics_->SetWorkerCount(state, n);
  }
}

std::string JobController::NewUid() {
  // A random (version 4) UUID.
  const uint64_t hi = (rng_() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  const uint64_t lo = (rng_() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32,
                         (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
                         lo & 0xffffffffffffULL);
}

JobController::JobRuntime* JobController::Find(const std::string& name) {
  auto it = jobs_.find(name);
  return it == jobs_.end() ? nullptr : it->second.get();
}

// --------------------------------------------------------------------- load

absl::Status JobController::Load() {
  absl::StatusOr<StoreSnapshot> snapshot = store_->Load();
  if (!snapshot.ok()) return snapshot.status();
  // Plan outside the lock; nothing is served yet.
  std::vector<std::pair<StoredJob, absl::StatusOr<std::shared_ptr<const PlannedSchedule>>>>
      loaded;
  for (StoredJob& stored : snapshot->jobs) {
    absl::StatusOr<std::shared_ptr<const PlannedSchedule>> plan =
        std::shared_ptr<const PlannedSchedule>();
    if (!IsTerminal(stored.job.status().state())) {
      plan = PlanForSpec(EffectiveSpec(stored.job.spec(), stored.job.status()),
                         "memory.hbm_budget");
    }
    loaded.emplace_back(std::move(stored), std::move(plan));
  }
  absl::MutexLock lock(&mu_);
  resource_version_ = snapshot->resource_version;
  for (auto& [stored, plan] : loaded) {
    auto rt = std::make_unique<JobRuntime>();
    rt->job = std::move(stored.job);
    rt->order = next_order_++;
    rt->last_sequence = stored.last_sequence;
    const std::string name = rt->job.metadata().name();
    resource_version_ = std::max<int64_t>(
        resource_version_, std::strtoll(rt->job.metadata().resource_version().c_str(),
                                        nullptr, 10));
    if (!rt->job.metadata().request_id().empty()) {
      by_request_id_[rt->job.metadata().request_id()] = name;
    }
    JobRuntime* r = rt.get();
    jobs_[name] = std::move(rt);
    const v1::JobState state = r->job.status().state();
    if (IsTerminal(state)) continue;
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
        workers_->Restore(a.worker_id(), WorkerBinding{name, st.attempt(),
                                                       a.device(), a.data_rank()});
      }
      kv_->OpenScope(StorePrefix(name, st.attempt()));
      r->last_complete_iteration = st.iteration();
      Mutation m = Begin(*r);
      AddEvent(&m, "CoordinatorRestarted",
               absl::StrCat("the coordinator restarted; attempt ", st.attempt(),
                            " continues once its ", st.assignments_size(),
                            " workers re-attach"));
      absl::Status s = Commit(r, std::move(m));
      if (!s.ok()) return s;
    }
  }
  PublishGauges();
  return absl::OkStatus();
}

// ------------------------------------------------------------------- submit

absl::StatusOr<v1::Job> JobController::SubmitJob(const v1::SubmitJobRequest& request) {
  if (!request.has_spec()) return absl::InvalidArgumentError("spec is required");
  const size_t size = request.spec().ByteSizeLong();
  if (size > static_cast<size_t>(rpc::kMaxJobSpecBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec is ", size, " bytes; the limit is ",
                     rpc::kMaxJobSpecBytes, " bytes"));
  }
  const std::string& request_id = request.request_id();
  if (request_id.size() > kMaxRequestIdBytes || !Printable(request_id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request_id must be at most ", kMaxRequestIdBytes,
        " printable ASCII characters (a UUID)"));
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
  // Rejected here, before any worker receives anything.
  absl::StatusOr<std::shared_ptr<const PlannedSchedule>> plan =
      PlanForSpec(spec, "memory.hbm_budget");
  if (!plan.ok()) return plan.status();

  absl::MutexLock lock(&mu_);
  if (!request_id.empty()) {
    auto it = by_request_id_.find(request_id);
    if (it != by_request_id_.end()) {
      if (JobRuntime* rt = Find(it->second)) return rt->job;
    }
  }
  if (JobRuntime* existing = Find(spec.name())) {
    if (SameSpec(existing->job.spec(), spec)) return existing->job;
    return absl::AlreadyExistsError(absl::StrCat(
        "job '", spec.name(),
        "' already exists with a different spec; choose another name, or "
        "delete the finished job first (DeleteJob)"));
  }
  auto rt = std::make_unique<JobRuntime>();
  rt->order = next_order_++;
  rt->plan = *plan;
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
  st->set_state(v1::JOB_STATE_PENDING);
  const int needed = spec.parallel().pipeline() * spec.parallel().data();
  st->set_message(absl::StrCat("waiting for ", needed, " idle workers"));
  SetCondition(st, "Admitted", false, "WaitingForWorkers", st->message(), now);
  m.transitions.push_back(v1::JOB_STATE_PENDING);
  AddEvent(&m, "Submitted",
           absl::StrCat("schedule ", spec.schedule().kind(), ", ",
                        spec.parallel().pipeline(), " stages x ",
                        spec.parallel().data(), " replicas; plan: ",
                        (*plan)->report.policy()));
  JobRuntime* r = rt.get();
  absl::Status s = Commit(r, std::move(m));
  if (!s.ok()) return s;
  jobs_[spec.name()] = std::move(rt);
  if (!request_id.empty()) by_request_id_[request_id] = spec.name();
  PublishGauges();
  AdmitPending();
  return r->job;
}

// ---------------------------------------------------------------- admission

void JobController::AdmitPending() {
  std::vector<JobRuntime*> waiting;
  for (auto& [name, rt] : jobs_) {
    const v1::JobState state = rt->job.status().state();
    if (state == v1::JOB_STATE_PENDING || state == v1::JOB_STATE_RECOVERING) {
      waiting.push_back(rt.get());
    }
  }
  if (waiting.empty()) return;
  std::sort(waiting.begin(), waiting.end(),
            [](const JobRuntime* a, const JobRuntime* b) { return a->order < b->order; });
  std::vector<std::string> idle = workers_->IdleAttached();
  const absl::Time now = clock_->Now();
  for (JobRuntime* rt : waiting) {
    const v1::ParallelSpec& par = rt->job.spec().parallel();
    const int data = std::max(1, par.data());
    const size_t full = static_cast<size_t>(par.pipeline()) * data;
    int pipeline = 0;
    int replicas = data;
    std::shared_ptr<const PlannedSchedule> plan;
    // First come, first served: a later, smaller job does not overtake a
    // job still waiting for workers (or recovering), so big jobs cannot
    // starve.
    if (rt->job.status().state() == v1::JOB_STATE_PENDING) {
      if (idle.size() < full) break;
      pipeline = par.pipeline();
    } else {
      if (now < rt->recover_after) break;
      if (idle.size() >= full) {
        plan = RecoveryPlan(rt, par.pipeline(), data);
        if (plan) {
          pipeline = par.pipeline();
          replicas = data;
        }
      } else if (now - rt->recovering_since >= recovery_.wait_for_workers) {
        plan = NarrowerPlan(rt, idle.size(), &pipeline, &replicas);
      }
      if (pipeline == 0) break;
    }
    const size_t needed = static_cast<size_t>(pipeline) * replicas;
    std::vector<std::string> chosen(idle.begin(), idle.begin() + needed);
    idle.erase(idle.begin(), idle.begin() + needed);
    absl::Status s = StartAttempt(rt, chosen, pipeline, plan);
    if (!s.ok()) break;  // the store is failing; retry on the next tick
  }
}

std::shared_ptr<const PlannedSchedule> JobController::RecoveryPlan(JobRuntime* rt,
                                                                   int pipeline, int data) {
  const std::pair<int, int> width(pipeline, data);
  auto it = rt->recovery_plans.find(width);
  if (it != rt->recovery_plans.end()) return it->second;
  // The submitted spec at this width, with the HBM budget recovery chose.
  v1::JobStatus at_width;
  at_width.set_pipeline(pipeline);
  at_width.set_data(data);
  at_width.set_hbm_budget_bytes(rt->job.status().hbm_budget_bytes());
  const v1::JobSpec spec = EffectiveSpec(rt->job.spec(), at_width);
  std::shared_ptr<const PlannedSchedule> plan;
  // Planning under the lock: recoveries are rare and the plans are cached,
  // and it keeps the decision atomic with taking the workers.
  if (ValidateJobSpec(spec).ok()) {
    absl::StatusOr<std::shared_ptr<const PlannedSchedule>> planned =
        PlanForSpec(spec, "memory.hbm_budget");
    if (planned.ok()) plan = *planned;
  }
  rt->recovery_plans[width] = plan;
  return plan;
}

std::shared_ptr<const PlannedSchedule> JobController::NarrowerPlan(JobRuntime* rt, size_t idle,
                                                                   int* pipeline, int* data) {
  const v1::JobSpec& spec = rt->job.spec();
  const int spec_pipeline = spec.parallel().pipeline();
  const int spec_data = std::max(1, spec.parallel().data());
  // Fewer devices means a tighter memory plan: fewer stages hold more
  // layers each, fewer replicas run more micro-batches each (the global
  // batch stays the spec's). The planner decides which still fit. Called
  // only when fewer than the spec's p x d workers are idle, so the spec's
  // own width is never a candidate.
  std::map<int, std::vector<std::pair<int, int>>, std::greater<>> by_devices;
  for (int p = 1; p <= spec_pipeline; ++p) {
    for (int d = 1; d <= spec_data; ++d) {
      if (static_cast<size_t>(p) * d > idle || !KeepsGlobalBatch(spec, d)) continue;
      by_devices[p * d].push_back({p, d});
    }
  }
  // Planning runs under the lock; the widest layouts come first and one of
  // them usually fits, but a job that fits nowhere must not stall the
  // coordinator for p x d plans.
  constexpr int kMaxPlans = 64;
  int planned = 0;
  for (const auto& [devices, widths] : by_devices) {
    std::shared_ptr<const PlannedSchedule> best;
    for (const auto& [p, d] : widths) {
      if (planned++ >= kMaxPlans) return best;
      std::shared_ptr<const PlannedSchedule> plan = RecoveryPlan(rt, p, d);
      if (plan && (!best || plan->report.tokens_per_second() >
                                best->report.tokens_per_second())) {
        best = plan;
        *pipeline = p;
        *data = d;
      }
    }
    if (best) return best;
  }
  return nullptr;
}

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
  return a;
}

absl::Status JobController::StartAttempt(JobRuntime* rt,
                                         const std::vector<std::string>& workers,
                                         int pipeline,
                                         std::shared_ptr<const PlannedSchedule> plan) {
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
      AddEvent(&m, "Replanned",
               absl::StrCat("re-planned onto ", pipeline, " stages x ", data,
                            " replicas of ", effective.training().microbatches(),
                            " micro-batches (was ", previous_pipeline, " x ", previous_data,
                            "): ", rt->plan->report.policy()));
    }
  }
  AddEvent(&m, "Admitted",
           absl::StrCat("attempt ", attempt, " on workers ", absl::StrJoin(workers, ", "),
                        ", ", pipeline, " stages x ", data, " replicas, ", from));
  absl::Status s = Transition(
      &m, v1::JOB_STATE_RUNNING, recovering ? "Recovered" : "Admitted",
      absl::StrCat("attempt ", attempt, " running on ", workers.size(), " workers"));
  if (!s.ok()) return s;
  s = Commit(rt, std::move(m));
  if (!s.ok()) return s;
  rt->partial.clear();
  rt->completed_ahead.clear();
  rt->finished.clear();
  rt->worker_checkpoint.clear();
  rt->recovery_plans.clear();
  rt->last_complete_iteration = rt->job.status().checkpoint_iteration();
  rt->policies[policy.generation()] = policy;
  // Open before the assignments go out: workers rendezvous right away.
  kv_->OpenScope(StorePrefix(name, attempt));
  for (const v1::StageAssignment& a : rt->job.status().assignments()) {
    workers_->Bind(a.worker_id(),
                   WorkerBinding{name, attempt, a.device(), a.data_rank()});
    v1::WorkerCommand cmd;
    *cmd.mutable_assign() = BuildAssignment(*rt, a);
    // A worker whose stream dropped gets it again when it re-attaches.
    workers_->Send(a.worker_id(), std::move(cmd));
  }
  PublishGauges();
  return absl::OkStatus();
}

void JobController::EndAttempt(JobRuntime* rt, const std::string& stop_reason,
                               bool send_stop) {
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
  rt->partial.clear();
  rt->completed_ahead.clear();
  rt->finished.clear();
  rt->worker_checkpoint.clear();
  PublishGauges();
}

void JobController::FailAttempt(JobRuntime* rt, const std::string& reason,
                                const std::string& message, bool out_of_memory,
                                bool permanent) {
  Mutation m = Begin(*rt);
  AddEvent(&m, reason, message);
  v1::JobStatus* st = m.job.mutable_status();
  const int restarts = st->restarts();
  std::string give_up;
  std::shared_ptr<const PlannedSchedule> smaller;
  if (permanent) {
    give_up = absl::StrCat(message,
                           "; not restarting: a new attempt would read the same data (fix "
                           "data.path or its files, then submit again)");
  } else if (restarts >= recovery_.max_restarts) {
    give_up = absl::StrCat(message, "; giving up after ", restarts, " restart",
                           restarts == 1 ? "" : "s", " (the limit is ",
                           recovery_.max_restarts, ")");
  } else if (out_of_memory) {
    // The device had less room than planned (fragmentation, other
    // tenants): plan again for less instead of failing the job.
    const int64_t current = rt->plan ? rt->plan->budget_bytes : st->hbm_budget_bytes();
    const int64_t budget =
        static_cast<int64_t>(static_cast<double>(current) * recovery_.oom_budget_factor);
    v1::JobSpec spec = EffectiveSpec(m.job.spec(), *st);
    spec.mutable_memory()->set_hbm_budget_bytes(budget);
    absl::StatusOr<std::shared_ptr<const PlannedSchedule>> plan =
        budget > 0 ? PlanForSpec(spec, "memory.hbm_budget")
                   : absl::InvalidArgumentError("no budget left");
    if (plan.ok()) {
      smaller = *plan;
      st->set_hbm_budget_bytes(smaller->budget_bytes);
      AddEvent(&m, "Replanned",
               absl::StrCat("out of memory: re-planned for ", FormatBytes(budget),
                            " per device (was ", FormatBytes(current),
                            "): ", smaller->report.policy()));
    } else {
      give_up = absl::StrCat(message, "; out of memory, and no plan fits ",
                             FormatBytes(budget), " per device: ",
                             plan.status().message());
    }
  }
  absl::Duration backoff = absl::ZeroDuration();
  if (give_up.empty()) {
    backoff = std::min(recovery_.max_backoff,
                       recovery_.backoff * static_cast<double>(int64_t{1} << std::min(restarts, 20)));
    st->set_restarts(restarts + 1);
    const std::string from =
        st->checkpoint_iteration() > 0
            ? absl::StrCat("the checkpoint of iteration ", st->checkpoint_iteration())
            : std::string("the beginning (no checkpoint yet)");
    if (!Transition(&m, v1::JOB_STATE_RECOVERING, reason,
                    absl::StrCat(message, "; restart ", restarts + 1, " of ",
                                 recovery_.max_restarts, " in ",
                                 absl::FormatDuration(backoff), ", from ", from))
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
    absl::StatusOr<std::vector<v1::JobEvent>> events =
        store_->Events(request.name(), 0, 0);
    if (!events.ok()) return events.status();
    for (v1::JobEvent& e : *events) *job.add_events() = std::move(e);
  }
  if (request.include_iterations()) {
    absl::StatusOr<std::vector<v1::IterationRecord>> its =
        store_->Iterations(request.name(), 0, 0);
    if (!its.ok()) return its.status();
    for (v1::IterationRecord& r : *its) *job.add_iterations() = std::move(r);
  }
  return job;
}

absl::StatusOr<v1::ListJobsResponse> JobController::ListJobs(
    const v1::ListJobsRequest& request) {
  if (!v1::JobState_IsValid(request.state())) {
    return absl::InvalidArgumentError(
        absl::StrCat("state has unknown value ", request.state()));
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

absl::StatusOr<v1::GetScheduleResponse> JobController::GetSchedule(
    const std::string& name) {
  absl::Status s = CheckName(name);
  if (!s.ok()) return s;
  std::shared_ptr<const PlannedSchedule> plan;
  v1::JobSpec spec;
  {
    absl::MutexLock lock(&mu_);
    JobRuntime* rt = Find(name);
    if (rt == nullptr) return NotFound(name);
    plan = rt->plan;
    spec = EffectiveSpec(rt->job.spec(), rt->job.status());
  }
  if (!plan) {
    // Finished jobs drop their plan; rebuilding it is pure and cheap enough
    // for an on-demand query.
    absl::StatusOr<std::shared_ptr<const PlannedSchedule>> planned =
        PlanForSpec(spec, "memory.hbm_budget");
    if (!planned.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job '", name, "' cannot be planned any more: ",
          planned.status().message()));
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
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", name, "' is ", JobStateName(rt->job.status().state()),
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
  NotifyWatchers();
  return job;
}

absl::StatusOr<v1::Job> JobController::UpdatePolicy(
    const v1::UpdatePolicyRequest& request) {
  absl::Status s = CheckName(request.name());
  if (!s.ok()) return s;
  if (request.has_offload_ratio() &&
      !(request.offload_ratio() >= 0.0 && request.offload_ratio() <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offload_ratio must be in [0, 1] (got ", request.offload_ratio(), ")"));
  }
  if (!v1::RecomputeMode_IsValid(request.recompute())) {
    return absl::InvalidArgumentError(
        absl::StrCat("recompute has unknown value ", request.recompute()));
  }
  if (!request.has_offload_ratio() && request.recompute() == v1::RECOMPUTE_AUTO) {
    return absl::InvalidArgumentError(
        "nothing to change: set offload_ratio and/or recompute");
  }
  v1::JobSpec spec;
  v1::JobStatus status_before;
  int64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    JobRuntime* rt = Find(request.name());
    if (rt == nullptr) return NotFound(request.name());
    if (IsTerminal(rt->job.status().state())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job '", request.name(), "' is ",
          JobStateName(rt->job.status().state()),
          "; only pending or running jobs take policy updates"));
    }
    generation = rt->job.metadata().generation();
    if (request.expected_generation() != 0 &&
        request.expected_generation() != generation) {
      return absl::AbortedError(absl::StrCat(
          "job '", request.name(), "' is at generation ", generation,
          ", not the expected ", request.expected_generation(),
          "; read it again and retry"));
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
  absl::StatusOr<std::shared_ptr<const PlannedSchedule>> plan =
      PlanForSpec(EffectiveSpec(spec, status_before),
                  request.has_offload_ratio() ? "offload_ratio" : "recompute");
  if (!plan.ok()) return plan.status();

  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(request.name());
  if (rt == nullptr) return NotFound(request.name());
  if (rt->job.metadata().generation() != generation ||
      rt->job.status().pipeline() != status_before.pipeline() ||
      rt->job.status().data() != status_before.data() ||
      rt->job.status().hbm_budget_bytes() != status_before.hbm_budget_bytes()) {
    return absl::AbortedError(absl::StrCat(
        "job '", request.name(), "' changed while the new policy was planned (",
        "generation ", rt->job.metadata().generation(), "); retry"));
  }
  const v1::JobState state = rt->job.status().state();
  if (IsTerminal(state)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", request.name(), "' finished while the new policy was planned"));
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
  int64_t newest = rt->last_complete_iteration;
  if (!rt->completed_ahead.empty()) newest = std::max(newest, *rt->completed_ahead.rbegin());
  if (!rt->partial.empty()) newest = std::max(newest, rt->partial.rbegin()->first);
  AddEvent(&m, "PolicyUpdated",
           absl::StrFormat("generation %d: offload_ratio %.3g, recompute %s%s",
                           new_generation, policy.offload_ratio(),
                           v1::RecomputeMode_Name(policy.recompute()),
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

absl::Status JobController::WatchJob(
    const v1::WatchJobRequest& request,
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
    int64_t seen_changes;
    {
      absl::MutexLock lock(&notify_mu_);
      if (shutting_down_) {
        return absl::UnavailableError("the coordinator is shutting down; watch again");
      }
      seen_changes = change_count_;
    }
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
    bool full_page = false;
    if (sent_sequence < last_sequence) {
      absl::StatusOr<std::vector<v1::JobEvent>> events =
          store_->Events(request.name(), sent_sequence, kHistoryPage);
      absl::StatusOr<std::vector<v1::IterationRecord>> iterations =
          store_->Iterations(request.name(), sent_sequence, kHistoryPage);
      if (!events.ok() || !iterations.ok()) {
        if (absl::IsNotFound(events.status())) return absl::OkStatus();
        return events.ok() ? iterations.status() : events.status();
      }
      full_page = static_cast<int>(events->size()) == kHistoryPage ||
                  static_cast<int>(iterations->size()) == kHistoryPage;
      // Merge by sequence; with a full page, only up to where both pages
      // are known to be complete.
      int64_t limit = std::numeric_limits<int64_t>::max();
      if (static_cast<int>(events->size()) == kHistoryPage) {
        limit = std::min(limit, events->back().sequence());
      }
      if (static_cast<int>(iterations->size()) == kHistoryPage) {
        limit = std::min(limit, iterations->back().sequence());
      }
      size_t ei = 0, ii = 0;
      while (ei < events->size() || ii < iterations->size()) {
        const bool take_event =
            ii >= iterations->size() ||
            (ei < events->size() &&
             (*events)[ei].sequence() < (*iterations)[ii].sequence());
        v1::JobUpdate update;
        if (take_event) {
          if ((*events)[ei].sequence() > limit) break;
          update.set_sequence((*events)[ei].sequence());
          *update.mutable_event() = std::move((*events)[ei++]);
        } else {
          if ((*iterations)[ii].sequence() > limit) break;
          update.set_sequence((*iterations)[ii].sequence());
          *update.mutable_iteration() = std::move((*iterations)[ii++]);
        }
        if (cancelled()) return absl::CancelledError("the watch was cancelled");
        if (!write(update)) return absl::CancelledError("the client went away");
        sent_sequence = update.sequence();
      }
    }
    if (full_page) continue;
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
    absl::MutexLock lock(&notify_mu_);
    if (change_count_ == seen_changes && !shutting_down_) {
      changed_.WaitWithTimeout(&notify_mu_, poll_interval_);
    }
  }
}

void JobController::Shutdown() {
  absl::MutexLock lock(&notify_mu_);
  shutting_down_ = true;
  changed_.SignalAll();
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
  FailAttempt(rt, "WorkerLost",
              absl::StrCat("worker ", id, " (stage ", binding.device, ", data rank ",
                           binding.data_rank, ") ", why));
}

void JobController::OnWorkerRegistered(
    const WorkerRegistry::Registration& registration) {
  if (registration.superseded.empty()) return;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, binding] : registration.superseded) {
    LoseWorker(id, binding, "restarted: a new process registered under its name");
  }
  PublishGauges();
}

void JobController::OnWorkerAttached(const std::string& worker_id) {
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

absl::StatusOr<v1::ProgressAck> JobController::ReportProgress(
    const v1::ProgressReport& report) {
  absl::Status s = CheckName(report.job());
  if (!s.ok()) return s;
  if (report.iteration() < 0 || report.checkpoint_iteration() < 0) {
    return absl::InvalidArgumentError(
        "iteration and checkpoint_iteration must be >= 0");
  }
  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(report.job());
  if (rt == nullptr) return NotFound(report.job());
  v1::ProgressAck ack;
  const v1::JobStatus& status = rt->job.status();
  if (status.state() != v1::JOB_STATE_RUNNING ||
      status.attempt() != report.attempt()) {
    // A straggler from an attempt that ended: tell it to stop.
    ack.set_stop(true);
    return ack;
  }
  const v1::StageAssignment* stage = StageOf(*rt, report.worker_id());
  if (stage == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker '", report.worker_id(), "' is not assigned to job '",
        report.job(), "' attempt ", report.attempt()));
  }
  workers_->Heartbeat(report.worker_id());
  const int num_workers = status.assignments_size();
  Mutation m = Begin(*rt);
  bool changed = false;

  if (report.iteration() > rt->last_complete_iteration &&
      rt->completed_ahead.count(report.iteration()) == 0) {
    auto& reports = rt->partial[report.iteration()];
    reports[{stage->data_rank(), stage->device()}] = report;
    if (static_cast<int>(reports.size()) == num_workers) {
      CompleteIteration(rt, report.iteration(), &m);
      changed = true;
    }
    while (!rt->partial.empty() &&
           rt->partial.begin()->first + kMaxPartialIterations < report.iteration()) {
      rt->partial.erase(rt->partial.begin());
    }
  }

  int64_t& worker_ckpt = rt->worker_checkpoint[report.worker_id()];
  worker_ckpt = std::max(worker_ckpt, report.checkpoint_iteration());
  int64_t durable = std::numeric_limits<int64_t>::max();
  for (const v1::StageAssignment& a : status.assignments()) {
    auto it = rt->worker_checkpoint.find(a.worker_id());
    durable = std::min(durable, it == rt->worker_checkpoint.end() ? 0 : it->second);
  }
  // A checkpoint is usable only once every stage has written its part.
  if (durable > m.job.status().checkpoint_iteration()) {
    m.job.mutable_status()->set_checkpoint_iteration(durable);
    m.job.mutable_status()->set_checkpoint_pipeline(
        m.job.status().pipeline() > 0 ? m.job.status().pipeline()
                                      : m.job.spec().parallel().pipeline());
    AddEvent(&m, "Checkpointed",
             absl::StrCat("checkpoint of iteration ", durable,
                          " written by all ", num_workers, " workers"));
    changed = true;
  }

  bool succeeded = false;
  if (report.finished()) {
    rt->finished.insert(report.worker_id());
    if (static_cast<int>(rt->finished.size()) == num_workers) {
      s = Transition(&m, v1::JOB_STATE_SUCCEEDED, "Completed",
                     absl::StrCat("completed ", m.job.status().iteration(),
                                  " iterations"));
      if (!s.ok()) return s;
      succeeded = true;
      changed = true;
    }
  }
  if (changed) {
    s = Commit(rt, std::move(m));
    if (!s.ok()) return s;
  }
  if (succeeded) {
    EndAttempt(rt, "", /*send_stop=*/false);
    rt->plan.reset();
    AdmitPending();
  }
  return ack;
}

void JobController::CompleteIteration(JobRuntime* rt, int64_t iteration, Mutation* m) {
  auto node = rt->partial.extract(iteration);
  const auto& reports = node.mapped();  // by (data_rank, device)
  v1::IterationRecord* rec = &m->iterations.emplace_back();
  rec->set_sequence(m->next_sequence++);
  rec->set_iteration(iteration);
  rec->set_attempt(rt->job.status().attempt());
  SetTimestamp(clock_->Now(), rec->mutable_time());
  double loss_sum = 0;
  int loss_count = 0;
  double seconds = 0;
  std::map<int, int64_t> tokens_by_rank;
  const v1::ProgressReport* head = nullptr;  // the report carrying the loss
  int64_t min_generation = std::numeric_limits<int64_t>::max();
  for (const auto& [key, r] : reports) {
    if (r.has_loss()) {
      loss_sum += r.loss();
      ++loss_count;
      if (head == nullptr) head = &r;
    }
    seconds = std::max(seconds, r.iteration_seconds());
    // Every stage of a replica reports the replica's tokens.
    tokens_by_rank[key.first] = std::max(tokens_by_rank[key.first], r.tokens());
    min_generation = std::min(min_generation, r.policy_generation());
    v1::DeviceIteration* d = rec->add_devices();
    *d = r.device();
    d->set_device(key.second);
    d->set_data_rank(key.first);
  }
  if (head == nullptr) head = &reports.begin()->second;
  int64_t tokens = 0;
  for (const auto& [rank, t] : tokens_by_rank) tokens += t;
  if (loss_count > 0) rec->set_loss(loss_sum / loss_count);
  rec->set_iteration_seconds(seconds);
  rec->set_tokens_per_second(seconds > 0 ? tokens / seconds : 0);
  rec->set_lr(head->lr());
  rec->set_grad_norm(head->grad_norm());
  rec->set_offload_ratio(head->offload_ratio());

  v1::JobStatus* st = m->job.mutable_status();
  // A late iteration (re-sent after a coordinator restart) fills its gap in
  // the history but does not move the job's current figures back.
  if (iteration >= st->iteration()) {
    st->set_iteration(iteration);
    if (loss_count > 0) st->set_loss(rec->loss());
    st->set_tokens_per_second(rec->tokens_per_second());
    *st->mutable_devices() = rec->devices();
  }
  // Move the mark over what is now contiguous. A gap that no late report
  // fills within kMaxPartialIterations is given up, as partial reports are,
  // so the set stays small.
  rt->completed_ahead.insert(iteration);
  while (!rt->completed_ahead.empty() &&
         (*rt->completed_ahead.begin() == rt->last_complete_iteration + 1 ||
          static_cast<int64_t>(rt->completed_ahead.size()) > kMaxPartialIterations)) {
    rt->last_complete_iteration = *rt->completed_ahead.begin();
    rt->completed_ahead.erase(rt->completed_ahead.begin());
  }

  // A policy is in force once every device ran an iteration under it.
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
                             min_generation, st->policy().offload_ratio(),
                             iteration, static_cast<int>(reports.size())),
             iteration);
  }
}

absl::Status JobController::ReportFault(const v1::FaultReport& report) {
  absl::Status s = CheckName(report.job());
  if (!s.ok()) return s;
  if (!v1::FaultKind_IsValid(report.kind())) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind has unknown value ", report.kind()));
  }
  absl::MutexLock lock(&mu_);
  JobRuntime* rt = Find(report.job());
  if (rt == nullptr) return NotFound(report.job());
  if (rt->job.status().state() != v1::JOB_STATE_RUNNING ||
      rt->job.status().attempt() != report.attempt()) {
    return absl::OkStatus();  // that attempt is already over
  }
  const v1::StageAssignment* stage = StageOf(*rt, report.worker_id());
  if (stage == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker '", report.worker_id(), "' is not assigned to job '",
        report.job(), "' attempt ", report.attempt()));
  }
  // Keep a hostile or runaway message from bloating the store.
  std::string message = report.message().substr(0, 4096);
  FailAttempt(rt, "Fault",
              absl::StrCat("worker ", report.worker_id(), " (stage ",
                           stage->device(), ", data rank ", stage->data_rank(),
                           ") reported ", v1::FaultKind_Name(report.kind()),
                           " at iteration ", report.iteration(), ": ", message),
              report.kind() == v1::FAULT_OUT_OF_MEMORY, report.kind() == v1::FAULT_INPUT);
  return absl::OkStatus();
}

void JobController::Tick() {
  std::vector<std::pair<std::string, WorkerBinding>> dead = workers_->ExpireDead();
  absl::MutexLock lock(&mu_);
  for (const auto& [id, binding] : dead) {
    if (binding.job.empty()) continue;
    LoseWorker(id, binding, "stopped sending heartbeats");
  }
  AdmitPending();
  PublishGauges();
}

}  // namespace chronos::coordinator
