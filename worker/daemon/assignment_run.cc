#include "worker/daemon/assignment_run.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cost_model.h"
#include "core/device_profile.h"
#include "core/job_spec_validation.h"
#include "core/path_roots.h"
#include "core/schedule_proto.h"
#include "core/status_macros.h"
#include "glog/logging.h"
#include "worker/input_fault.h"
#include "worker/stage_launcher.h"

namespace chronos::worker {
namespace {

// What the daemon derives from the job once: model FLOPs per token for MFU,
// the model-state bytes of this stage (weights, gradients, optimizer
// state) for the CPU memory figures, and the memory capacity to export.
struct JobFigures {
  double flops_per_token = 0;
  double peak_flops = 0;  // per device
  int pipeline = 1;
  int64_t state_bytes = 0;
  int64_t capacity_bytes = 0;
};

JobFigures FiguresFor(const v1::JobSpec& spec, const Schedule& schedule, int device,
                      int64_t device_memory_bytes) {
  JobFigures f;
  f.pipeline = std::max(1, schedule.num_devices);
  absl::StatusOr<v1::DeviceProfile> profile = ResolveDeviceProfile(spec.device());
  if (!profile.ok()) {
    LOG(WARNING) << "no device profile for MFU: " << profile.status();
    f.capacity_bytes = device_memory_bytes;
    return f;
  }
  f.peak_flops = profile->peak_flops();
  const ModelShape shape = ModelShapeFromSpec(spec, *profile);
  CostModel cost(shape, *profile, schedule.chunk_layers);
  if (shape.tokens() > 0) {
    f.flops_per_token = cost.ModelFlopsPerMicrobatch() / shape.tokens();
  }
  for (int c : schedule.DeviceChunks(device)) {
    const ChunkCost& cc = cost.chunk(c);
    f.state_bytes += cc.weight_bytes + cc.gradient_bytes + cc.optimizer_bytes;
  }
  if (device_memory_bytes > 0) {
    f.capacity_bytes = device_memory_bytes;
  } else if (spec.memory().hbm_budget_bytes() > 0) {
    f.capacity_bytes = spec.memory().hbm_budget_bytes();
  } else {
    f.capacity_bytes = DefaultHbmBudget(*profile);
  }
  return f;
}

std::string ResolveDir(const std::string& dir, const std::string& base) {
  if (dir.empty() || base.empty() || std::filesystem::path(dir).is_absolute()) {
    return dir;
  }
  return (std::filesystem::path(base) / dir).string();
}

}  // namespace

v1::FaultKind FaultKindOf(const absl::Status& status) {
  if (IsInputFault(status)) return v1::FAULT_INPUT;
  if (IsStorageFault(status)) return v1::FAULT_STORAGE;
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      return v1::FAULT_OUT_OF_MEMORY;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return v1::FAULT_TRANSPORT;
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
      return v1::FAULT_DATA;
    default:
      return v1::FAULT_INTERNAL;
  }
}

// Turns each completed iteration into metrics and a queued ProgressReport.
class AssignmentRun::Sink : public ProgressSink {
 public:
  Sink(AssignmentRun* run, JobFigures figures) : run_(run), figures_(std::move(figures)) {}

  absl::Status OnIteration(const v1::ProgressReport& report) override {
    const v1::Assignment& a = run_->a_;
    run_->iteration_.store(report.iteration());
    v1::ProgressReport p = report;
    p.set_job(a.job());
    p.set_attempt(a.attempt());
    p.set_finished(report.iteration() >= a.spec().training().iterations());
    v1::DeviceIteration* d = p.mutable_device();
    if (d->hbm_reserved_bytes() == 0 && d->hbm_allocated_bytes() == 0) {
      // No device allocator (CPU): model state from the cost model plus the
      // ledger's activations.
      d->set_hbm_allocated_bytes(figures_.state_bytes + d->resident_activation_bytes());
      d->set_hbm_reserved_bytes(d->hbm_allocated_bytes());
      d->set_hbm_peak_bytes(figures_.state_bytes + d->peak_activation_bytes());
    }
    const double seconds = d->iteration_seconds();
    IterationDerived derived;
    derived.bubble_ratio =
        seconds > 0 ? std::clamp(1.0 - d->compute_seconds() / seconds, 0.0, 1.0) : 0;
    if (figures_.peak_flops > 0 && seconds > 0) {
      derived.mfu = figures_.flops_per_token * (p.tokens() / seconds) /
                    (figures_.pipeline * figures_.peak_flops);
    }
    run_->services_.metrics->RecordIteration(run_->labels_, p, derived);
    run_->reporter_->Enqueue(std::move(p));
    return absl::OkStatus();
  }

 private:
  AssignmentRun* const run_;
  const JobFigures figures_;
};

AssignmentRun::AssignmentRun(v1::Assignment assignment, AssignmentServices services,
                             std::unique_ptr<AssignmentRun> previous)
    : a_(std::move(assignment)),
      services_(std::move(services)),
      labels_{a_.job(), a_.device(), a_.data_rank()},
      previous_(std::move(previous)) {
  generation_ = a_.policy_generation();
  CoordinatorClient* client = services_.client;
  reporter_ = std::make_unique<ProgressReporter>(
      [client](const v1::ProgressReport& r) { return client->ReportProgress(r); },
      [this](const std::string& reason) { Stop(reason); },
      [this](const absl::Status& status) { Fail(status); });
  thread_ = std::thread([this] { Main(); });
}

AssignmentRun::~AssignmentRun() {
  Stop("the worker dropped the assignment");
  thread_.join();
  reporter_.reset();
}

void AssignmentRun::Stop(const std::string& reason) {
  if (!stop_.exchange(true)) {
    LOG(INFO) << "stopping job " << a_.job() << " attempt " << a_.attempt() << ": " << reason;
  }
  // A training thread waiting for room to queue its report goes on to see
  // the stop.
  reporter_->Release();
  absl::MutexLock lock(&mu_);
  if (runner_ != nullptr) runner_->Stop();
}

void AssignmentRun::Fail(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (failure_.ok()) failure_ = status;
  }
  Stop(std::string(status.message()));
}

void AssignmentRun::UpdatePolicy(int64_t generation, const v1::Schedule& schedule,
                                 double offload_ratio) {
  absl::MutexLock lock(&mu_);
  if (generation <= generation_) return;
  if (runner_ == nullptr) {
    pending_ = Pending{generation, schedule, offload_ratio};
    return;
  }
  absl::StatusOr<Schedule> s = ScheduleFromProto(schedule);
  if (!s.ok()) {
    LOG(ERROR) << "policy generation " << generation << " has an unusable schedule: " << s.status();
    return;
  }
  generation_ = generation;
  runner_->UpdateSchedule(*s, generation, offload_ratio);
  services_.metrics->SetOffloadRatio(labels_, offload_ratio);
  LOG(INFO) << "job " << a_.job() << ": policy generation " << generation << " (offload ratio "
            << offload_ratio << ") applies from the next iteration";
}

void AssignmentRun::ResendUnacknowledgedProgress() {
  // reporter_ lives from the constructor to the destructor.
  reporter_->ResendUnacknowledged();
}

void AssignmentRun::RequestCheckpoint() {
  absl::MutexLock lock(&mu_);
  if (runner_ != nullptr) {
    runner_->RequestCheckpoint();
  } else {
    checkpoint_pending_ = true;
  }
}

void AssignmentRun::RefreshLiveMetrics() {
  absl::MutexLock lock(&mu_);
  if (runner_ == nullptr) return;
  const LedgerSnapshot l = runner_->ledger().Snapshot();
  services_.metrics->SetActivationBytes(labels_, l.resident_bytes, l.offloaded_bytes);
  if (services_.device_memory_bytes == 0) {
    const int64_t allocated = state_bytes_.load() + l.resident_bytes;
    services_.metrics->SetHbmAllocatedBytes(labels_, allocated, allocated);
  }
}

absl::Status AssignmentRun::result() const {
  absl::MutexLock lock(&mu_);
  return result_;
}

absl::Status AssignmentRun::Train() {
  CHRONOS_ASSIGN_OR_RETURN(Schedule schedule, ScheduleFromProto(a_.schedule()));
  if (a_.device() < 0 || a_.device() >= schedule.num_devices) {
    return absl::InvalidArgumentError(absl::StrCat("assignment: device ", a_.device(),
                                                   " outside a ", schedule.num_devices,
                                                   "-device schedule"));
  }
  const WorkerOptions& o = *services_.options;
  JobFigures figures = FiguresFor(a_.spec(), schedule, a_.device(), services_.device_memory_bytes);
  services_.metrics->BeginJob(labels_, figures.capacity_bytes, a_.offload_ratio());
  state_bytes_.store(figures.state_bytes);

  StageLaunchOptions lo;
  lo.runner.spec = a_.spec();
  // Stored specs are defaulted at submission; specs stored by an older
  // coordinator get the same defaults here (the function is idempotent).
  ApplyJobSpecDefaults(&lo.runner.spec);
  lo.runner.schedule = std::move(schedule);
  lo.runner.device = a_.device();
  lo.runner.data_rank = a_.data_rank();
  lo.runner.resume_iteration = a_.resume_iteration();
  lo.runner.checkpoint_num_devices = a_.checkpoint_num_devices();
  lo.runner.checkpoint_dir = ResolveDir(
      !a_.checkpoint_dir().empty() ? a_.checkpoint_dir() : a_.spec().training().checkpoint_dir(),
      o.data_dir);
  // The coordinator's allowed roots, checked again on this machine's file
  // system (its symlinks may differ): nothing outside them is opened.
  const std::vector<std::string> data_roots(a_.allowed_data_roots().begin(),
                                            a_.allowed_data_roots().end());
  const std::vector<std::string> ckpt_roots(a_.allowed_checkpoint_roots().begin(),
                                            a_.allowed_checkpoint_roots().end());
  if (absl::Status s = CheckUnderRoots(lo.runner.spec.data().path(), "", data_roots, "data.path");
      !s.ok()) {
    return AsInputFault(s);
  }
  if (absl::Status s =
          CheckUnderRoots(lo.runner.checkpoint_dir, "", ckpt_roots, "training.checkpoint_dir");
      !s.ok()) {
    return AsInputFault(s);
  }
  lo.runner.device_name = o.device;
  lo.runner.threads = o.threads;
  lo.runner.policy_generation = a_.policy_generation();
  lo.runner.offload_ratio = a_.offload_ratio();
  lo.store = services_.store;
  lo.store_prefix = a_.store_prefix();
  lo.hostname = o.advertise_host;
  lo.rendezvous_timeout = o.rendezvous_timeout;
  lo.comm_timeout = o.comm_timeout;
  lo.pinned_pool_bytes = o.pinned_pool_bytes;
  LOG(INFO) << "job " << a_.job() << " attempt " << a_.attempt() << ": stage " << a_.device()
            << " of " << a_.num_devices() << ", data rank " << a_.data_rank()
            << ", resuming after iteration " << a_.resume_iteration() << "; rendezvous under "
            << a_.store_prefix();
  CHRONOS_ASSIGN_OR_RETURN(std::unique_ptr<StageRunner> runner, LaunchStage(std::move(lo)));
  {
    absl::MutexLock lock(&mu_);
    if (stop_.load()) return absl::CancelledError("stopped before training");
    runner_ = runner.get();
    if (pending_) {
      absl::StatusOr<Schedule> s = ScheduleFromProto(pending_->schedule);
      if (s.ok()) {
        generation_ = pending_->generation;
        runner_->UpdateSchedule(*s, pending_->generation, pending_->offload_ratio);
      }
      pending_.reset();
    }
    if (checkpoint_pending_) runner_->RequestCheckpoint();
    checkpoint_pending_ = false;
  }
  LOG(INFO) << "job " << a_.job() << ": stage " << a_.device() << " joined its peers; training";
  Sink sink(this, figures);
  absl::Status s = runner->Run(&sink);
  {
    absl::MutexLock lock(&mu_);
    runner_ = nullptr;
  }
  return s;
}

void AssignmentRun::ReportFault(const absl::Status& status) {
  const v1::FaultKind kind = FaultKindOf(status);
  services_.metrics->RecordFault(labels_, kind);
  v1::FaultReport f;
  f.set_job(a_.job());
  f.set_attempt(a_.attempt());
  f.set_kind(kind);
  f.set_message(std::string(status.message()).substr(0, 4000));
  f.set_iteration(iteration_.load() + 1);
  for (int tries = 0; tries < 10; ++tries) {
    absl::Status s = services_.client->ReportFault(f);
    if (s.ok()) return;
    if (!absl::IsUnavailable(s) && !absl::IsDeadlineExceeded(s)) {
      LOG(WARNING) << "fault report refused: " << s;
      return;
    }
    if (stop_.load()) return;
    absl::SleepFor(absl::Milliseconds(200) * (tries + 1));
  }
}

void AssignmentRun::Main() {
  previous_.reset();  // joins the attempt this one replaces
  absl::Status s;
  if (stop_.load()) {
    s = absl::CancelledError("stopped before it started");
  } else {
    try {
      s = Train();
    } catch (const std::exception& e) {
      s = absl::InternalError(absl::StrCat("assignment: ", e.what()));
    } catch (...) {
      s = absl::InternalError("assignment: unknown exception");
    }
  }
  auto failure = [this] {
    absl::MutexLock lock(&mu_);
    return failure_;
  };
  bool reported = false;
  if (!failure().ok()) s = failure();
  if (s.ok()) {
    LOG(INFO) << "job " << a_.job() << ": stage " << a_.device() << " finished all iterations";
  } else if (failure().ok() && (stop_.load() || absl::IsCancelled(s))) {
    LOG(INFO) << "job " << a_.job() << ": stage " << a_.device() << " stopped: " << s.message();
  } else {
    LOG(ERROR) << "job " << a_.job() << ": stage " << a_.device() << " failed: " << s;
    ReportFault(s);
    reported = true;
  }
  // Hold on until the coordinator has stored every report (the final one
  // above all) unless told to stop: a restarting coordinator gets every
  // report once it is back.
  while (!reporter_->Flush(absl::Milliseconds(500))) {
    if (stop_.load()) {
      reporter_->Flush(absl::Seconds(2));
      break;
    }
  }
  if (!reported && !failure().ok()) {
    // Found while the last reports were delivered.
    s = failure();
    ReportFault(s);
  }
  services_.metrics->EndJob(labels_);
  {
    absl::MutexLock lock(&mu_);
    result_ = s;
  }
  finished_.store(true);
}

}  // namespace chronos::worker
