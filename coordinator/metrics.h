// The coordinator's Prometheus metrics (docs/metrics.md, "Coordinator
// metrics"): jobs and workers by state, each job's and each worker name's
// state, job transitions and restarts, policy updates, RPC latency and
// results (through a server interceptor), the build info and the process_*
// figures. Every state count is created up front, so each state is exported
// with 0 rather than missing. Thread-safe.
#ifndef CHRONOS_COORDINATOR_METRICS_H_
#define CHRONOS_COORDINATOR_METRICS_H_

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "chronos/v1/job.pb.h"
#include "chronos/v1/worker.pb.h"
#include "rpc/metrics_http_server.h"

namespace chronos::coordinator {

class Metrics {
 public:
  explicit Metrics(const std::string& version);
  ~Metrics();

  // Serves GET /metrics on `listen` (HOST:PORT, port 0 = any free port).
  // kUnavailable when the address cannot be bound.
  absl::Status Serve(const std::string& listen);
  // HOST:PORT actually bound, "" when not serving.
  std::string address() const { return address_; }
  // The exposition text, as a scrape would return it (tests).
  std::string Render() const;

  void SetJobCount(v1::JobState state, int count);
  void SetWorkerCount(v1::WorkerState state, int count);
  // One stored job, for the per-job series.
  struct JobSample {
    std::string name;
    v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
    double completion_seconds = 0;  // since the epoch; 0 while unfinished
  };
  // Replaces the per-job series: chronos_coordinator_job_state{chronos_job,
  // state} (1, for the current state only) and, for a finished job,
  // chronos_coordinator_job_completion_timestamp_seconds{chronos_job}. A
  // job not given any more loses its series.
  void SetJobStates(const std::vector<JobSample>& jobs);
  // Replaces chronos_coordinator_worker_state{chronos_worker, state}: one
  // series per worker name (WorkerRegistry::StatesByName).
  void SetWorkerStates(const std::map<std::string, v1::WorkerState>& by_name);
  void RecordTransition(v1::JobState to);
  void RecordRestart();
  void RecordPolicyUpdate();
  // `method` is the full gRPC method ("/chronos.v1.ControlService/GetJob").
  void ObserveRpcDuration(absl::string_view method, double seconds);
  void CountRpc(absl::string_view method, grpc::StatusCode code);
  // The same calls under the grpc-ecosystem server metric names
  // (grpc_server_started_total, grpc_server_handled_total,
  // grpc_server_handling_seconds), so that stock gRPC dashboards work.
  // `type` is unary, client_stream, server_stream or bidi_stream; the
  // handling time of a stream is its whole life, as there.
  void RecordGrpcStarted(absl::string_view method, absl::string_view type);
  void RecordGrpcHandled(absl::string_view method, absl::string_view type, grpc::StatusCode code,
                         double seconds);
  // "OK", "NotFound", ...: the grpc_code spelling of those metrics.
  static std::string GrpcCodeLabel(grpc::StatusCode code);

  // Times every call and counts its result; install before the auth
  // interceptor so rejected calls are counted too.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeInterceptorFactory();

  // "running", "idle", ...: the label values docs/metrics.md lists.
  static std::string JobStateLabel(v1::JobState state);
  static std::string WorkerStateLabel(v1::WorkerState state);

 private:
  // Short method names of our services and the health service; anything
  // else is labelled "other", so clients cannot grow label cardinality.
  std::string MethodLabel(absl::string_view method) const;
  // {grpc_service, grpc_method, grpc_type} of a full method name; unknown
  // methods are "unknown" (bounded cardinality, as MethodLabel).
  std::map<std::string, std::string> GrpcLabels(absl::string_view method,
                                                absl::string_view type) const;
  struct StateSeries {
    int state = 0;
    prometheus::Gauge* gauge = nullptr;
  };
  // Brings `series` (name -> its one state series) to `want` (name ->
  // state and its label): a series whose state changed is replaced, one
  // whose name is gone removed.
  static void ReplaceStateSeries(prometheus::Family<prometheus::Gauge>* family,
                                 const std::string& name_label,
                                 const std::map<std::string, std::pair<int, std::string>>& want,
                                 std::map<std::string, StateSeries>* series);

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<rpc::MetricsHttpServer> server_;
  std::string address_;
  std::set<std::string> known_methods_;

  prometheus::Family<prometheus::Gauge>* jobs_;
  prometheus::Family<prometheus::Gauge>* workers_;
  prometheus::Family<prometheus::Counter>* transitions_;
  prometheus::Counter* restarts_;
  prometheus::Counter* policy_updates_;
  prometheus::Family<prometheus::Histogram>* rpc_duration_;
  prometheus::Family<prometheus::Counter>* rpc_requests_;
  prometheus::Family<prometheus::Counter>* grpc_started_;
  prometheus::Family<prometheus::Counter>* grpc_handled_;
  prometheus::Family<prometheus::Histogram>* grpc_handling_;
  std::map<v1::JobState, prometheus::Gauge*> job_gauges_;
  std::map<v1::WorkerState, prometheus::Gauge*> worker_gauges_;
  std::map<v1::JobState, prometheus::Counter*> transition_counters_;
  prometheus::Family<prometheus::Gauge>* job_state_;
  prometheus::Family<prometheus::Gauge>* job_completion_;
  prometheus::Family<prometheus::Gauge>* worker_state_;

  absl::Mutex series_mu_;
  std::map<std::string, StateSeries> job_series_ ABSL_GUARDED_BY(series_mu_);
  std::map<std::string, prometheus::Gauge*> completion_series_ ABSL_GUARDED_BY(series_mu_);
  std::map<std::string, StateSeries> worker_series_ ABSL_GUARDED_BY(series_mu_);
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_METRICS_H_
