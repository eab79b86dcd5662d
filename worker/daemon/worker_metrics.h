// The worker's Prometheus metrics (docs/metrics.md, "Worker metrics"):
// per-assignment series labelled {chronos_job, stage, data_rank}, plus
// {gpu, UUID} on a GPU worker (DCGM exporter's labels, to join with it),
// created when an assignment starts and removed when it ends (so label
// cardinality is bounded by the jobs a worker runs at once: one); the fault
// counters, which keep their history for the life of the process; the
// unlabelled chronos_worker_connected; chronos_worker_info; and the
// process_* figures. `chronos_job`, not `job`: Prometheus' own target label
// is `job`, and a scrape that does not honour labels would rename ours.
//
// Thread-safe: the training thread records iterations, the command thread
// begins and ends jobs, the exposer's threads collect.
#ifndef CHRONOS_WORKER_DAEMON_WORKER_METRICS_H_
#define CHRONOS_WORKER_DAEMON_WORKER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "chronos/v1/worker.pb.h"
#include "rpc/metrics_http_server.h"

namespace chronos::worker {

// The label values of one assignment's series.
struct JobLabels {
  std::string job;
  int stage = 0;
  int data_rank = 0;
  bool operator<(const JobLabels& o) const {
    return std::tie(job, stage, data_rank) < std::tie(o.job, o.stage, o.data_rank);
  }
};

// What the metrics derive from an iteration's record with the job's cost
// figures (the worker daemon computes them).
struct IterationDerived {
  double bubble_ratio = 0;  // 1 - compute / wall time of this device
  double mfu = 0;           // model FLOPs utilisation of the pipeline
};

class WorkerMetrics {
 public:
  WorkerMetrics(const std::string& version, const std::string& device);
  ~WorkerMetrics();

  // A GPU worker's identity: adds {gpu, UUID} to chronos_worker_info and to
  // every series created after it, marks chronos_worker_hbm_capacity_bytes
  // as the device's memory (source="device"; a CPU worker's is the
  // planner's budget, source="budget"), and exports the pinned host pool's
  // bound. Call once, before Serve and BeginJob.
  void SetGpu(int cuda_index, const std::string& uuid, int64_t pinned_limit_bytes);

  // Serves GET /metrics on `listen` (HOST:PORT, port 0 = any free port).
  // kUnavailable when the address cannot be bound.
  absl::Status Serve(const std::string& listen);
  std::string address() const { return address_; }  // HOST:PORT bound
  // The exposition text, as a scrape returns it: runs the collect hook
  // first, so live values are current.
  std::string Render() const;
  // Called before every scrape (on the serving thread) to refresh values
  // that change within an iteration. Set once, before Serve.
  void SetCollectHook(std::function<void()> hook) { hook_ = std::move(hook); }
  // Stops serving (before what the hook touches goes away). Idempotent.
  void StopServing();

  void SetConnected(bool connected);

  // Creates the assignment's series (zeros, capacity and offload ratio set).
  void BeginJob(const JobLabels& labels, int64_t capacity_bytes, double offload_ratio);
  // One iteration's record (chronos.v1.ProgressReport: the same figures
  // the progress report carries, with the same definitions).
  void RecordIteration(const JobLabels& labels, const v1::ProgressReport& r,
                       const IterationDerived& derived);
  // Live activation bytes (from the ledger) and, on CPU, the allocated
  // bytes they imply, sampled at scrape time.
  void SetActivationBytes(const JobLabels& labels, int64_t resident, int64_t offloaded);
  void SetHbmAllocatedBytes(const JobLabels& labels, int64_t allocated, int64_t reserved);
  void SetOffloadRatio(const JobLabels& labels, double ratio);
  void RecordFault(const JobLabels& labels, v1::FaultKind kind);
  // Removes the assignment's series.
  void EndJob(const JobLabels& labels);

  // "transport", "out_of_memory", ... (the `kind` label values).
  static std::string FaultKindLabel(v1::FaultKind kind);

 private:
  struct Series;
  Series* Find(const JobLabels& labels) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::map<std::string, std::string> LabelsOf(const JobLabels& labels) const;

  std::shared_ptr<prometheus::Registry> registry_;
  // Not prometheus::Exposer: see metrics_http_server.h.
  std::unique_ptr<rpc::MetricsHttpServer> server_;
  std::string address_;
  std::function<void()> hook_;

  using GaugeFamily = prometheus::Family<prometheus::Gauge>;
  using CounterFamily = prometheus::Family<prometheus::Counter>;
  GaugeFamily* hbm_allocated_;
  GaugeFamily* hbm_reserved_;
  GaugeFamily* hbm_peak_;
  GaugeFamily* hbm_capacity_;
  GaugeFamily* pinned_reserved_;
  GaugeFamily* pinned_peak_;
  GaugeFamily* pinned_fallback_;
  GaugeFamily* act_resident_;
  GaugeFamily* act_offloaded_;
  GaugeFamily* act_peak_;
  CounterFamily* offloaded_total_;
  CounterFamily* reloaded_total_;
  CounterFamily* recompute_seconds_;
  prometheus::Family<prometheus::Histogram>* iteration_seconds_;
  CounterFamily* iterations_total_;
  CounterFamily* tokens_total_;
  GaugeFamily* tokens_per_second_;
  GaugeFamily* loss_;
  GaugeFamily* bubble_ratio_;
  GaugeFamily* offload_ratio_;
  GaugeFamily* mfu_;
  GaugeFamily* grad_norm_;
  CounterFamily* faults_;
  GaugeFamily* last_iteration_;
  GaugeFamily* info_;
  GaugeFamily* pinned_limit_;
  prometheus::Gauge* info_series_;
  prometheus::Gauge* connected_;
  const std::string version_;
  const std::string device_;
  // {gpu, UUID} on a GPU worker; set by SetGpu before any series reads it.
  std::map<std::string, std::string> device_labels_;

  absl::Mutex mu_;
  std::map<JobLabels, std::unique_ptr<Series>> series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_WORKER_METRICS_H_
