#include "coordinator/metrics.h"

#include <google/protobuf/descriptor.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rpc/process_metrics.h"
#include "rpc/status_convert.h"

namespace chronos::coordinator {
namespace {

const std::vector<v1::JobState>& AllJobStates() {
  static const auto* states = new std::vector<v1::JobState>{
      v1::JOB_STATE_PLANNING,   v1::JOB_STATE_PENDING,   v1::JOB_STATE_RUNNING,
      v1::JOB_STATE_RECOVERING, v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED,
      v1::JOB_STATE_CANCELLED};
  return *states;
}

const std::vector<v1::WorkerState>& AllWorkerStates() {
  static const auto* states = new std::vector<v1::WorkerState>{
      v1::WORKER_STATE_IDLE, v1::WORKER_STATE_BUSY, v1::WORKER_STATE_DEAD};
  return *states;
}

class RpcMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(Metrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics),
        method_(info->method() != nullptr ? info->method() : ""),
        unary_(info->type() == grpc::experimental::ServerRpcInfo::Type::UNARY),
        type_(TypeLabel(info->type())),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (!started_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      metrics_->RecordGrpcStarted(method_, type_);
      started_ = true;
    }
    // A stream is "established" when its initial metadata goes out; its
    // lifetime (as long as a job) says nothing about latency.
    if (!unary_ && !observed_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      Observe();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      if (!observed_) Observe();
      const grpc::StatusCode code = methods->GetSendStatus().error_code();
      metrics_->CountRpc(method_, code);
      if (!started_) metrics_->RecordGrpcStarted(method_, type_);
      started_ = true;
      metrics_->RecordGrpcHandled(
          method_, type_, code,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    methods->Proceed();
  }

 private:
  void Observe() {
    metrics_->ObserveRpcDuration(
        method_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    observed_ = true;
  }

  static const char* TypeLabel(grpc::experimental::ServerRpcInfo::Type type) {
    using Type = grpc::experimental::ServerRpcInfo::Type;
    switch (type) {
      case Type::CLIENT_STREAMING:
        return "client_stream";
      case Type::SERVER_STREAMING:
        return "server_stream";
      case Type::BIDI_STREAMING:
        return "bidi_stream";
      default:
        return "unary";
    }
  }

  Metrics* metrics_;
  std::string method_;
  bool unary_;
  std::string type_;
  std::chrono::steady_clock::time_point start_;
  bool observed_ = false;
  bool started_ = false;
};

class RpcMetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcMetricsInterceptor(metrics_, info);
  }

 private:
  Metrics* metrics_;
};

}  // namespace

Metrics::Metrics(const std::string& version) : registry_(std::make_shared<prometheus::Registry>()) {
  jobs_ = &prometheus::BuildGauge()
               .Name("chronos_coordinator_jobs")
               .Help("Jobs in each state.")
               .Register(*registry_);
  for (v1::JobState s : AllJobStates()) {
    job_gauges_[s] = &jobs_->Add({{"state", JobStateLabel(s)}});
  }
  workers_ = &prometheus::BuildGauge()
                  .Name("chronos_coordinator_workers")
                  .Help("Registered workers in each state.")
                  .Register(*registry_);
  for (v1::WorkerState s : AllWorkerStates()) {
    worker_gauges_[s] = &workers_->Add({{"state", WorkerStateLabel(s)}});
  }
  job_state_ = &prometheus::BuildGauge()
                    .Name("chronos_coordinator_job_state")
                    .Help("1 for each stored job's current state (one series per job).")
                    .Register(*registry_);
  job_completion_ = &prometheus::BuildGauge()
                         .Name("chronos_coordinator_job_completion_timestamp_seconds")
                         .Help(
                             "When a finished job succeeded, failed or was cancelled (seconds "
                             "since the epoch).")
                         .Register(*registry_);
  worker_state_ = &prometheus::BuildGauge()
                       .Name("chronos_coordinator_worker_state")
                       .Help(
                           "1 for each worker name's state: the state of its live "
                           "registration, dead when it has none.")
                       .Register(*registry_);
  restarts_ = &prometheus::BuildCounter()
                   .Name("chronos_coordinator_job_restarts_total")
                   .Help("Job restarts from a checkpoint after a failure.")
                   .Register(*registry_)
                   .Add({});
  transitions_ = &prometheus::BuildCounter()
                      .Name("chronos_coordinator_job_transitions_total")
                      .Help("Job state transitions, by the state entered.")
                      .Register(*registry_);
  for (v1::JobState s : AllJobStates()) {
    transition_counters_[s] = &transitions_->Add({{"to", JobStateLabel(s)}});
  }
  rpc_duration_ = &prometheus::BuildHistogram()
                       .Name("chronos_coordinator_rpc_duration_seconds")
                       .Help(
                           "Handling time of unary RPCs (streams: time to "
                           "establish).")
                       .Register(*registry_);
  rpc_requests_ = &prometheus::BuildCounter()
                       .Name("chronos_coordinator_rpc_requests_total")
                       .Help("Completed RPCs by method and gRPC status code.")
                       .Register(*registry_);
  grpc_started_ = &prometheus::BuildCounter()
                       .Name("grpc_server_started_total")
                       .Help("Total number of RPCs started on the server.")
                       .Register(*registry_);
  grpc_handled_ = &prometheus::BuildCounter()
                       .Name("grpc_server_handled_total")
                       .Help(
                           "Total number of RPCs completed on the server, regardless of success "
                           "or failure.")
                       .Register(*registry_);
  grpc_handling_ = &prometheus::BuildHistogram()
                        .Name("grpc_server_handling_seconds")
                        .Help(
                            "Histogram of response latency (seconds) of gRPC that had been "
                            "application-level handled by the server.")
                        .Register(*registry_);
  policy_updates_ = &prometheus::BuildCounter()
                         .Name("chronos_coordinator_policy_updates_total")
                         .Help("Live policy updates accepted.")
                         .Register(*registry_)
                         .Add({});
  prometheus::BuildGauge()
      .Name("chronos_coordinator_info")
      .Help("Constant 1; build metadata.")
      .Register(*registry_)
      .Add({{"version", version}})
      .Set(1);

  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* service : {"chronos.v1.ControlService", "chronos.v1.WorkerService"}) {
    const google::protobuf::ServiceDescriptor* d = pool->FindServiceByName(service);
    if (d == nullptr) continue;
    for (int i = 0; i < d->method_count(); ++i) {
      known_methods_.insert(d->method(i)->name());
    }
  }
  known_methods_.insert("Check");
  known_methods_.insert("Watch");
}

Metrics::~Metrics() = default;

absl::Status Metrics::Serve(const std::string& listen) {
  // The same bounded server as the worker's: slow or half-open clients
  // cannot keep a scrape out (rpc/metrics_http_server.h).
  auto server = std::make_unique<rpc::MetricsHttpServer>([this] { return Render(); });
  absl::Status s = server->Start(listen);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("--metrics-listen: ", s.message()));
  }
  std::string host = listen;
  const size_t colon = listen.rfind(':');
  if (colon != std::string::npos) host = listen.substr(0, colon);
  address_ = absl::StrCat(host, ":", server->port());
  server_ = std::move(server);
  return absl::OkStatus();
}

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& f : rpc::ProcessMetricFamilies()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::ReplaceStateSeries(prometheus::Family<prometheus::Gauge>* family,
                                 const std::string& name_label,
                                 const std::map<std::string, std::pair<int, std::string>>& want,
                                 std::map<std::string, StateSeries>* series) {
  for (auto it = series->begin(); it != series->end();) {
    auto w = want.find(it->first);
    if (w == want.end() || w->second.first != it->second.state) {
      family->Remove(it->second.gauge);
      it = series->erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, state] : want) {
    if (series->count(name)) continue;
    prometheus::Gauge* g = &family->Add({{name_label, name}, {"state", state.second}});
    g->Set(1);
    (*series)[name] = StateSeries{state.first, g};
  }
}

void Metrics::SetJobStates(const std::vector<JobSample>& jobs) {
  std::map<std::string, std::pair<int, std::string>> want;
  for (const JobSample& j : jobs) want[j.name] = {j.state, JobStateLabel(j.state)};
  absl::MutexLock lock(&series_mu_);
  ReplaceStateSeries(job_state_, "chronos_job", want, &job_series_);
  std::map<std::string, double> done;
  for (const JobSample& j : jobs) {
    if (j.completion_seconds > 0) done[j.name] = j.completion_seconds;
  }
  for (auto it = completion_series_.begin(); it != completion_series_.end();) {
    if (done.count(it->first) == 0) {
      job_completion_->Remove(it->second);
      it = completion_series_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, seconds] : done) {
    prometheus::Gauge*& g = completion_series_[name];
    if (g == nullptr) g = &job_completion_->Add({{"chronos_job", name}});
    g->Set(seconds);
  }
}

void Metrics::SetWorkerStates(const std::map<std::string, v1::WorkerState>& by_name) {
  std::map<std::string, std::pair<int, std::string>> want;
  for (const auto& [name, state] : by_name) want[name] = {state, WorkerStateLabel(state)};
  absl::MutexLock lock(&series_mu_);
  ReplaceStateSeries(worker_state_, "chronos_worker", want, &worker_series_);
}

void Metrics::SetJobCount(v1::JobState state, int count) {
  auto it = job_gauges_.find(state);
  if (it != job_gauges_.end()) it->second->Set(count);
}

void Metrics::SetWorkerCount(v1::WorkerState state, int count) {
  auto it = worker_gauges_.find(state);
  if (it != worker_gauges_.end()) it->second->Set(count);
}

void Metrics::RecordTransition(v1::JobState to) {
  auto it = transition_counters_.find(to);
  if (it != transition_counters_.end()) it->second->Increment();
}

void Metrics::RecordRestart() { restarts_->Increment(); }

void Metrics::RecordPolicyUpdate() { policy_updates_->Increment(); }

std::string Metrics::MethodLabel(absl::string_view method) const {
  const size_t slash = method.rfind('/');
  const std::string name(slash == absl::string_view::npos ? method : method.substr(slash + 1));
  return known_methods_.count(name) ? name : "other";
}

void Metrics::ObserveRpcDuration(absl::string_view method, double seconds) {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  rpc_duration_->Add({{"method", MethodLabel(method)}}, *buckets).Observe(seconds);
}

void Metrics::CountRpc(absl::string_view method, grpc::StatusCode code) {
  rpc_requests_->Add({{"method", MethodLabel(method)}, {"code", rpc::GrpcCodeName(code)}})
      .Increment();
}

std::map<std::string, std::string> Metrics::GrpcLabels(absl::string_view method,
                                                       absl::string_view type) const {
  const size_t slash = method.rfind('/');
  std::string service = "unknown";
  std::string name = "unknown";
  if (slash != absl::string_view::npos && slash > 1 && MethodLabel(method) != "other") {
    service = std::string(method.substr(1, slash - 1));
    name = std::string(method.substr(slash + 1));
  }
  return {{"grpc_service", service}, {"grpc_method", name}, {"grpc_type", std::string(type)}};
}

void Metrics::RecordGrpcStarted(absl::string_view method, absl::string_view type) {
  grpc_started_->Add(GrpcLabels(method, type)).Increment();
}

void Metrics::RecordGrpcHandled(absl::string_view method, absl::string_view type,
                                grpc::StatusCode code, double seconds) {
  // go-grpc-middleware's default buckets.
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  std::map<std::string, std::string> labels = GrpcLabels(method, type);
  grpc_handling_->Add(labels, *buckets).Observe(seconds);
  labels["grpc_code"] = GrpcCodeLabel(code);
  grpc_handled_->Add(labels).Increment();
}

std::string Metrics::GrpcCodeLabel(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Metrics::MakeInterceptorFactory() {
  return std::make_unique<RpcMetricsInterceptorFactory>(this);
}

std::string Metrics::JobStateLabel(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_PLANNING:
      return "planning";
    case v1::JOB_STATE_PENDING:
      return "pending";
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_RECOVERING:
      return "recovering";
    case v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

std::string Metrics::WorkerStateLabel(v1::WorkerState state) {
  switch (state) {
    case v1::WORKER_STATE_IDLE:
      return "idle";
    case v1::WORKER_STATE_BUSY:
      return "busy";
    case v1::WORKER_STATE_DEAD:
      return "dead";
    default:
      return "unspecified";
  }
}

}  // namespace chronos::coordinator
