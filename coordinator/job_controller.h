// The JobController owns every job: the job map, its mutex, and commit.
// Each change to a job is a Mutation committed as one store transaction
// before it becomes visible, so a coordinator restart loses no
// acknowledged change. The rest lives in pieces of their own:
//  - coordinator/replanner.h: every plan (submission, live policy change,
//    recovery at the same or a narrower width, out-of-memory re-plan), and
//    the order-search memo;
//  - coordinator/admission.h: gang admission (waiting jobs x idle workers x
//    clock -> attempts to start), pure;
//  - coordinator/progress_tracker.h: per-stage reports -> complete
//    iterations, checkpoints, finished workers, pure;
//  - coordinator/job_watch.h: the change feed and the history replay of
//    WatchJob.
// A submitted job is stored PLANNING and SubmitJob answers at once; its plan
// is made on the background planner (coordinator/plan_queue.h), and the job
// becomes PENDING when the plan lands, FAILED when the spec cannot be
// planned or the plan takes longer than PlanningOptions::deadline, and a
// cancel stops the planning (coordinator/job_planning.cc).
// Nothing heavy runs under the mutex: every plan is made with the lock
// released and committed only if the job has not changed meanwhile (its
// generation, attempt, state and budget), the pattern UpdatePolicy set.
// Admission that needs a recovery plan stops at that job, the plan is made
// after the lock is released (in the same call), and admission runs again.
// A worker dies or faults -> its job moves to RECOVERING: the attempt is
// stopped, and after a back-off a new attempt resumes from the last
// checkpoint every stage wrote, at full width if enough workers are idle,
// else (after a grace period) re-planned onto fewer stages if the planner
// says the model still fits.
//
// Thread-safe. Callers: ControlService and WorkerService handlers (any gRPC
// thread) and the Coordinator's maintenance loop (Tick). Lock order: this
// controller's mutex, then the WorkerRegistry's, KvStore's and JobStore's
// (they never call back).
#ifndef CHRONOS_COORDINATOR_JOB_CONTROLLER_H_
#define CHRONOS_COORDINATOR_JOB_CONTROLLER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/control.pb.h"
#include "chronos/v1/job.pb.h"
#include "chronos/v1/worker.pb.h"
#include "coordinator/clock.h"
#include "coordinator/job_store.h"
#include "coordinator/job_watch.h"
#include "coordinator/kv_store.h"
#include "coordinator/metrics.h"
#include "coordinator/plan_queue.h"
#include "coordinator/planning_options.h"
#include "coordinator/progress_tracker.h"
#include "coordinator/recovery_options.h"
#include "coordinator/replanner.h"
#include "coordinator/worker_registry.h"

namespace chronos::coordinator {

// Where jobs may read data and write checkpoints (empty: anywhere).
struct PathRoots {
  std::vector<std::string> data;
  std::vector<std::string> checkpoints;
};

class JobController {
 public:
  // All pointers are borrowed and must outlive the controller. `replanner`
  // null = the standard one (tests pass their own).
  JobController(JobStore* store, WorkerRegistry* workers, KvStore* kv, Metrics* metrics,
                Clock* clock, absl::Duration poll_interval = absl::Milliseconds(200),
                RecoveryOptions recovery = RecoveryOptions(),
                std::shared_ptr<Replanner> replanner = nullptr, PathRoots roots = PathRoots(),
                PlanningOptions planning = PlanningOptions());
  // Stops the background planner first: its tasks call back into this.
  ~JobController();

  // Reads every job from the store (once, before serving). Jobs that were
  // PLANNING are planned again from the start. Jobs that were running stay
  // RUNNING: their workers get a heartbeat timeout to
  // re-register (with previous_worker_id) and re-attach, and then receive
  // their Assignment again.
  absl::Status Load();

  // ControlService.
  absl::StatusOr<v1::Job> SubmitJob(const v1::SubmitJobRequest& request);
  absl::StatusOr<v1::Job> GetJob(const v1::GetJobRequest& request);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> CancelJob(const std::string& name);
  absl::StatusOr<v1::Job> DeleteJob(const std::string& name);
  absl::StatusOr<v1::Job> UpdatePolicy(const v1::UpdatePolicyRequest& request);
  absl::StatusOr<v1::GetScheduleResponse> GetSchedule(const std::string& name);
  // Streams the job's history after request.since_sequence, then live
  // updates, until the job is terminal and everything was sent (OK), `write`
  // fails or `cancelled` returns true (kCancelled), or Shutdown()
  // (kUnavailable). Re-checks `cancelled` at least every poll interval.
  absl::Status WatchJob(const v1::WatchJobRequest& request,
                        const std::function<bool(const v1::JobUpdate&)>& write,
                        const std::function<bool()>& cancelled);

  // WorkerService.
  void OnWorkerRegistered(const WorkerRegistry::Registration& registration);
  // Re-sends the Assignment of the worker's running attempt, if any, and
  // admits pending jobs that were waiting for workers.
  void OnWorkerAttached(const std::string& worker_id);
  absl::StatusOr<v1::ProgressAck> ReportProgress(const v1::ProgressReport& report);
  absl::Status ReportFault(const v1::FaultReport& report);

  // The stage (device) of every worker of a running attempt, by worker id:
  // the one home of that mapping (status.assignments).
  std::map<std::string, int> RunningStages();

  // Maintenance: declares overdue workers dead (ending their attempts),
  // admits pending jobs, refreshes the gauges. Called periodically.
  void Tick();
  // Ends WatchJob streams (later calls to it return kUnavailable) and
  // stops the background planner (jobs being planned stay PLANNING in the
  // store; the next start plans them again).
  void Shutdown();

 private:
  struct JobRuntime {
    v1::Job job;  // metadata, spec, status; never history
    int64_t order = 0;
    int64_t last_sequence = 0;
    // The plan for the current spec and generation; null until planned.
    SharedPlan plan;
    // The running attempt's progress, in memory only (rebuilt from reports
    // after a restart).
    ProgressTracker progress;
    std::map<int64_t, v1::PolicyState> policies;  // by generation pushed
    // RECOVERING only: no restart before recover_after; re-planning onto
    // fewer stages only after recovering_since + wait_for_workers.
    absl::Time recover_after = absl::InfinitePast();
    absl::Time recovering_since = absl::InfinitePast();
    // Plans by (pipeline, data) width made while recovering (null: does
    // not fit).
    std::map<std::pair<int, int>, SharedPlan> recovery_plans;
    // PLANNING only: set to stop its background plan.
    CancelFlag planning_cancel;
  };

  // A change to one job, committed as one store transaction.
  struct Mutation {
    v1::Job job;
    std::vector<v1::JobEvent> events;
    std::vector<v1::IterationRecord> iterations;
    std::vector<v1::JobState> transitions;
    int64_t next_sequence = 0;
  };

  // What a job looked like when a plan for it was started outside the
  // lock; the plan is committed only if it still looks the same.
  struct PlanBasis {
    std::string job;
    std::string uid;
    int64_t generation = 0;
    int attempt = 0;
    v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
    int64_t hbm_budget_bytes = 0;
    bool operator==(const PlanBasis& o) const {
      return job == o.job && uid == o.uid && generation == o.generation && attempt == o.attempt &&
             state == o.state && hbm_budget_bytes == o.hbm_budget_bytes;
    }
  };
  // Recovery widths admission asked for, planned after the lock is released.
  struct PlanRequest {
    PlanBasis basis;
    v1::JobSpec spec;  // the submitted spec
    std::vector<std::pair<int, int>> widths;
  };
  // Plans the pending PlanRequest (if any) with the lock released, commits
  // the plans if the job is unchanged and admits again, until admission
  // asks for nothing more. Every public method that may admit runs it on
  // the way out (AdmitOnExit), after its lock is released.
  void ResolvePlans() ABSL_LOCKS_EXCLUDED(mu_);
  class AdmitOnExit {
   public:
    explicit AdmitOnExit(JobController* c) : c_(c) {}
    ~AdmitOnExit() { c_->ResolvePlans(); }

   private:
    JobController* c_;
  };

  PlanBasis BasisOf(const JobRuntime& rt) const;

  // The background plan of a PLANNING job (coordinator/job_planning.cc).
  struct PlanningTask {
    PlanBasis basis;
    v1::JobSpec spec;
    CancelFlag cancel;
  };
  // A new cancellation flag for `rt` (kept in rt->planning_cancel) and the
  // task that plans it.
  PlanningTask BeginPlanning(JobRuntime* rt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the tasks to the planner (with zero planner threads, runs them).
  void EnqueuePlanning(std::vector<PlanningTask> tasks) ABSL_LOCKS_EXCLUDED(mu_);
  // On a planner thread: plans, then moves the job to PENDING (and admits)
  // or to FAILED, if it is still the PLANNING job the task was made for.
  void RunPlanning(const PlanningTask& task) ABSL_LOCKS_EXCLUDED(mu_);
  // A stop check for a plan started now: true once `cancel` (when given) is
  // set or planning_.deadline has passed on the coordinator's clock, which
  // it then records in `*timed_out` (when given).
  StopCheck PlanStop(CancelFlag cancel = nullptr,
                     std::shared_ptr<std::atomic<bool>> timed_out = nullptr);
  // Why a plan that ran out of time failed the job: the fields that make it
  // big, and the coordinator flag that bounds it.
  std::string PlanDeadlineMessage(const v1::JobSpec& spec) const;
  Mutation Begin(const JobRuntime& rt) const;
  // `iteration`: see chronos.v1.JobEvent.iteration.
  void AddEvent(Mutation* m, const std::string& type, const std::string& message,
                int64_t iteration = -1);
  absl::Status Transition(Mutation* m, v1::JobState to, const std::string& reason,
                          const std::string& message);
  absl::Status Commit(JobRuntime* rt, Mutation m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobRuntime* Find(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the attempts admission allows now (coordinator/admission.h),
  // with the plans already made; records the plans it still needs in
  // plan_request_ for ResolvePlans.
  void AdmitPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new attempt of `rt` on `workers` (pipeline-major: stage i % pipeline,
  // data rank i / pipeline, workers.size() / pipeline replicas) with `plan`
  // (rt->plan when null).
  absl::Status StartAttempt(JobRuntime* rt, const std::vector<std::string>& workers, int pipeline,
                            SharedPlan plan = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Assignment BuildAssignment(const JobRuntime& rt, const v1::StageAssignment& stage) const;
  // Stops (optionally) and releases the attempt's workers and closes its
  // rendezvous scope.
  void EndAttempt(JobRuntime* rt, const std::string& stop_reason, bool send_stop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker of the running attempt died or faulted: stop the attempt and
  // move the job to RECOVERING (restarted later by AdmitPending), or to
  // FAILED once the restart limit is reached, after an out-of-memory fault
  // when nothing fits a smaller budget (`smaller`, planned by the caller
  // outside the lock), or at once when `permanent` says why every attempt
  // would fail the same way (the training data, a full checkpoint disk).
  void FailAttempt(JobRuntime* rt, const std::string& reason, const std::string& message,
                   const absl::StatusOr<SharedPlan>* smaller = nullptr,
                   const std::string& permanent = "") ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The HBM budget an out-of-memory re-plan asks for after `current`.
  int64_t OomBudget(int64_t current) const;
  // Worker `id`, bound to `binding`, is gone (`why` completes the event's
  // sentence): fails its attempt if that attempt still runs.
  void LoseWorker(const std::string& id, const WorkerBinding& binding, absl::string_view why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteIteration(JobRuntime* rt, int64_t iteration, const ProgressTracker::Reports& reports,
                         Mutation* m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const v1::StageAssignment* StageOf(const JobRuntime& rt, const std::string& worker_id) const;
  void PublishGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewUid() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobStore* const store_;
  WorkerRegistry* const workers_;
  KvStore* const kv_;
  Metrics* const metrics_;
  Clock* const clock_;
  const absl::Duration poll_interval_;
  const RecoveryOptions recovery_;
  const std::shared_ptr<Replanner> replanner_;
  const PathRoots roots_;
  const PlanningOptions planning_;

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<JobRuntime>> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> by_request_id_ ABSL_GUARDED_BY(mu_);
  int64_t resource_version_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  // Jobs per state at the last PublishGauges: the per-job series are
  // rebuilt (O(jobs)) only when these change, as every mutation that adds,
  // removes or moves a job does.
  std::map<v1::JobState, int> published_counts_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  std::optional<PlanRequest> plan_request_ ABSL_GUARDED_BY(mu_);

  ChangeFeed changes_;
  // Last: its threads call into everything above, and ~JobController stops
  // it before anything above is destroyed.
  PlanQueue planner_;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_JOB_CONTROLLER_H_
