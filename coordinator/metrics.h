// The coordinator's Prometheus metrics (docs/metrics.md, "Coordinator
// metrics"): jobs and workers by state, job transitions and restarts, policy
// updates, RPC latency and results (through a server interceptor), and the
// build info. Every label value that can occur is created up front, so each
// state is exported with 0 rather than missing. Thread-safe.
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

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
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
  void RecordTransition(v1::JobState to);
  void RecordRestart();
  void RecordPolicyUpdate();
  // `method` is the full gRPC method ("/chronos.v1.ControlService/GetJob").
  void ObserveRpcDuration(absl::string_view method, double seconds);
  void CountRpc(absl::string_view method, grpc::StatusCode code);

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
  std::map<v1::JobState, prometheus::Gauge*> job_gauges_;
  std::map<v1::WorkerState, prometheus::Gauge*> worker_gauges_;
  std::map<v1::JobState, prometheus::Counter*> transition_counters_;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_METRICS_H_
