// The JobController owns every job: it validates and plans submissions,
// admits pending jobs when enough idle attached workers exist (gang
// admission, first come first served), assigns stages and pushes each
// worker its Assignment, turns progress reports into IterationRecords and
// status, applies live policy updates, and ends attempts (success, cancel,
// failure). A worker that dies or reports a fault moves its job to
// RECOVERING: the attempt is stopped, and after a back-off a new attempt
// resumes from the last checkpoint that every stage wrote, on the full
// pipeline width if enough workers are idle, else (after a grace period)
// re-planned onto fewer stages if the planner says the model still fits. All job state sits behind one mutex and every change is written
// through to the JobStore before it becomes visible, so a coordinator
// restart loses no acknowledged change.
//
// Thread-safe. Callers: ControlService and WorkerService handlers (any gRPC
// thread) and the Coordinator's maintenance loop (Tick). Planning for
// submissions and policy updates runs outside the lock; recovery and
// out-of-memory re-plans run under it (rare, cached, milliseconds). Lock order: this controller's mutex, then the
// WorkerRegistry's, KvStore's and JobStore's (they never call back).
#ifndef CHRONOS_COORDINATOR_JOB_CONTROLLER_H_
#define CHRONOS_COORDINATOR_JOB_CONTROLLER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/control.pb.h"
#include "chronos/v1/job.pb.h"
#include "chronos/v1/worker.pb.h"
#include "coordinator/clock.h"
#include "coordinator/recovery_options.h"
#include "coordinator/job_store.h"
#include "coordinator/kv_store.h"
#include "coordinator/metrics.h"
#include "coordinator/worker_registry.h"
#include "core/planner.h"

namespace chronos::coordinator {

class JobController {
 public:
  // All pointers are borrowed and must outlive the controller.
  JobController(JobStore* store, WorkerRegistry* workers, KvStore* kv,
                Metrics* metrics, Clock* clock,
                absl::Duration poll_interval = absl::Milliseconds(200),
                RecoveryOptions recovery = RecoveryOptions());

  // Reads every job from the store (once, before serving). Jobs that were
  // running stay RUNNING: their workers get a heartbeat timeout to
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

  // Maintenance: declares overdue workers dead (ending their attempts),
  // admits pending jobs, refreshes the gauges. Called periodically.
  void Tick();
  // Ends WatchJob streams; later calls to it return kUnavailable.
  void Shutdown();

 private:
  struct JobRuntime {
    v1::Job job;  // metadata, spec, status; never history
    int64_t order = 0;
    int64_t last_sequence = 0;
    // The plan for the current spec and generation; null until planned.
    std::shared_ptr<const PlannedSchedule> plan;
    // Per attempt, in memory only (rebuilt from reports after a restart).
    std::map<int64_t, std::map<std::pair<int, int>, v1::ProgressReport>> partial;
    // Every iteration up to last_complete_iteration is recorded; after a
    // coordinator restart, reports it had acknowledged come back late, so
    // later iterations may complete first: those wait in completed_ahead.
    int64_t last_complete_iteration = 0;
    std::set<int64_t> completed_ahead;
    std::set<std::string> finished;
    std::map<std::string, int64_t> worker_checkpoint;
    std::map<int64_t, v1::PolicyState> policies;  // by generation pushed
    // RECOVERING only: no restart before recover_after; re-planning onto
    // fewer stages only after recovering_since + wait_for_workers.
    absl::Time recover_after = absl::InfinitePast();
    absl::Time recovering_since = absl::InfinitePast();
    // Plans by (pipeline, data) width tried while recovering (null: does
    // not fit).
    std::map<std::pair<int, int>, std::shared_ptr<const PlannedSchedule>> recovery_plans;
  };

  // A change to one job, committed as one store transaction.
  struct Mutation {
    v1::Job job;
    std::vector<v1::JobEvent> events;
    std::vector<v1::IterationRecord> iterations;
    std::vector<v1::JobState> transitions;
    int64_t next_sequence = 0;
  };

  Mutation Begin(const JobRuntime& rt) const;
  // `iteration`: see chronos.v1.JobEvent.iteration.
  void AddEvent(Mutation* m, const std::string& type, const std::string& message,
                int64_t iteration = -1);
  absl::Status Transition(Mutation* m, v1::JobState to, const std::string& reason,
                          const std::string& message);
  absl::Status Commit(JobRuntime* rt, Mutation m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobRuntime* Find(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts pending jobs and restarts recovering ones, in submission order,
  // while idle attached workers last.
  void AdmitPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The plan for a recovering job at `pipeline` stages x `data` replicas;
  // null if it does not fit or cannot run that narrow. Cached per recovery.
  std::shared_ptr<const PlannedSchedule> RecoveryPlan(JobRuntime* rt, int pipeline, int data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The widest layout narrower than the spec's that fits on `idle` workers:
  // most devices first, then the most tokens per second the planner
  // predicts; plans the 64 widest candidates at most. Sets *pipeline and
  // *data; null if none fits.
  std::shared_ptr<const PlannedSchedule> NarrowerPlan(JobRuntime* rt, size_t idle,
                                                      int* pipeline, int* data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new attempt of `rt` on `workers` (pipeline-major: stage i % pipeline,
  // data rank i / pipeline, workers.size() / pipeline replicas) with `plan`
  // (rt->plan when null).
  absl::Status StartAttempt(JobRuntime* rt, const std::vector<std::string>& workers,
                            int pipeline,
                            std::shared_ptr<const PlannedSchedule> plan = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Assignment BuildAssignment(const JobRuntime& rt,
                                 const v1::StageAssignment& stage) const;
  // Stops (optionally) and releases the attempt's workers and closes its
  // rendezvous scope.
  void EndAttempt(JobRuntime* rt, const std::string& stop_reason, bool send_stop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker of the running attempt died or faulted: stop the attempt and
  // move the job to RECOVERING (restarted later by AdmitPending), or to
  // FAILED once the restart limit is reached, after an out-of-memory fault
  // when nothing fits a smaller budget, or at once when the fault is
  // `permanent` (the training data: every attempt would fail the same way).
  void FailAttempt(JobRuntime* rt, const std::string& reason,
                   const std::string& message, bool out_of_memory = false,
                   bool permanent = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Worker `id`, bound to `binding`, is gone (`why` completes the event's
  // sentence): fails its attempt if that attempt still runs.
  void LoseWorker(const std::string& id, const WorkerBinding& binding, absl::string_view why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteIteration(JobRuntime* rt, int64_t iteration, Mutation* m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const v1::StageAssignment* StageOf(const JobRuntime& rt,
                                     const std::string& worker_id) const;
  void PublishGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyWatchers();
  std::string NewUid() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobStore* const store_;
  WorkerRegistry* const workers_;
  KvStore* const kv_;
  Metrics* const metrics_;
  Clock* const clock_;
  const absl::Duration poll_interval_;
  const RecoveryOptions recovery_;

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<JobRuntime>> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> by_request_id_ ABSL_GUARDED_BY(mu_);
  int64_t resource_version_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);

  // Watchers wait on this, not on mu_, so they never hold up mutations.
  absl::Mutex notify_mu_;
  absl::CondVar changed_;
  int64_t change_count_ ABSL_GUARDED_BY(notify_mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(notify_mu_) = false;
};

// The offload ratio a plan runs with: the spec's when set, else the
// planner's choice.
double EffectiveOffloadRatio(const v1::JobSpec& spec, const PlannedSchedule& plan);

// The spec a job's attempts run with: the submitted spec at the width and
// HBM budget that recovery chose (status.pipeline, status.data,
// status.hbm_budget_bytes) when they differ.
v1::JobSpec EffectiveSpec(const v1::JobSpec& spec, const v1::JobStatus& status);

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_JOB_CONTROLLER_H_
