#include "worker/daemon/worker_metrics.h"

#include <prometheus/text_serializer.h>

#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "rpc/process_metrics.h"

namespace chronos::worker {
namespace {

const prometheus::Histogram::BucketBoundaries& IterationBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300};
  return *b;
}

constexpr v1::FaultKind kFaultKinds[] = {v1::FAULT_TRANSPORT, v1::FAULT_OUT_OF_MEMORY,
                                         v1::FAULT_DATA,      v1::FAULT_INTERNAL,
                                         v1::FAULT_INPUT,     v1::FAULT_STORAGE};

}  // namespace

struct WorkerMetrics::Series {
  std::vector<std::pair<GaugeFamily*, prometheus::Gauge*>> gauges;
  std::vector<std::pair<CounterFamily*, prometheus::Counter*>> counters;
  prometheus::Histogram* iteration_seconds = nullptr;
  prometheus::Gauge* hbm_allocated = nullptr;
  prometheus::Gauge* hbm_reserved = nullptr;
  prometheus::Gauge* hbm_peak = nullptr;
  prometheus::Gauge* pinned_reserved = nullptr;
  prometheus::Gauge* pinned_peak = nullptr;
  prometheus::Gauge* pinned_fallback = nullptr;
  prometheus::Gauge* act_resident = nullptr;
  prometheus::Gauge* act_offloaded = nullptr;
  prometheus::Gauge* act_peak = nullptr;
  prometheus::Counter* offloaded_total = nullptr;
  prometheus::Counter* reloaded_total = nullptr;
  prometheus::Counter* recompute_seconds = nullptr;
  prometheus::Counter* iterations_total = nullptr;
  prometheus::Counter* tokens_total = nullptr;
  prometheus::Gauge* tokens_per_second = nullptr;
  prometheus::Gauge* loss = nullptr;  // created at the first loss
  prometheus::Gauge* bubble_ratio = nullptr;
  prometheus::Gauge* offload_ratio = nullptr;
  prometheus::Gauge* mfu = nullptr;
  prometheus::Gauge* grad_norm = nullptr;
  prometheus::Gauge* last_iteration = nullptr;
  std::map<v1::FaultKind, prometheus::Counter*> faults;
};

WorkerMetrics::WorkerMetrics(const std::string& version, const std::string& device)
    : registry_(std::make_shared<prometheus::Registry>()), version_(version), device_(device) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto gauge = [&](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(*registry_);
  };
  auto counter = [&](const char* name, const char* help) {
    return &BuildCounter().Name(name).Help(help).Register(*registry_);
  };
  hbm_allocated_ = gauge("chronos_worker_hbm_allocated_bytes",
                         "Device memory allocated to tensors (CPU: bytes the "
                         "memory ledger accounts).");
  hbm_reserved_ =
      gauge("chronos_worker_hbm_reserved_bytes", "Device memory held by the caching allocator.");
  hbm_peak_ =
      gauge("chronos_worker_hbm_peak_bytes", "Peak allocated device memory in the last iteration.");
  pinned_reserved_ = gauge("chronos_worker_pinned_host_reserved_bytes",
                           "GPU: pinned host memory held by the stage's pool (offloaded "
                           "activations and optimizer state); bounded by --pinned-pool.");
  pinned_peak_ = gauge("chronos_worker_pinned_host_peak_bytes",
                       "GPU: peak pinned host memory in use in the last "
                       "iteration.");
  pinned_fallback_ = gauge("chronos_worker_pinned_host_fallback_bytes",
                           "GPU: bytes offloaded to pageable memory because the pinned pool was "
                           "full, since the stage started (copies of these are synchronous).");
  hbm_capacity_ = gauge("chronos_worker_hbm_capacity_bytes",
                        "The memory the stage fits in: source=\"device\", the GPU's memory; "
                        "source=\"budget\" on a CPU worker, which has no HBM, the planner's "
                        "budget (the job's memory.hbm_budget or its device profile's).");
  pinned_limit_ = gauge("chronos_worker_pinned_host_limit_bytes",
                        "GPU: the bound of the pinned host pool (--pinned-pool, or its default).");
  act_resident_ = gauge("chronos_worker_activation_resident_bytes",
                        "Stashed activation bytes resident on the device.");
  act_offloaded_ = gauge("chronos_worker_activation_offloaded_bytes",
                         "Stashed activation bytes offloaded to host memory.");
  act_peak_ = gauge("chronos_worker_activation_peak_bytes",
                    "Peak resident activation bytes in the last iteration.");
  offloaded_total_ =
      counter("chronos_worker_offloaded_bytes_total", "Bytes copied device to host by offloading.");
  reloaded_total_ =
      counter("chronos_worker_reloaded_bytes_total", "Bytes copied host to device by reloading.");
  recompute_seconds_ = counter("chronos_worker_recompute_seconds_total",
                               "Seconds spent recomputing dropped activations.");
  iteration_seconds_ = &BuildHistogram()
                            .Name("chronos_worker_iteration_seconds")
                            .Help("Wall time of one training iteration.")
                            .Register(*registry_);
  iterations_total_ = counter("chronos_worker_iterations_total", "Completed training iterations.");
  tokens_total_ =
      counter("chronos_worker_tokens_total", "Training tokens consumed by this pipeline replica.");
  tokens_per_second_ =
      gauge("chronos_worker_tokens_per_second", "Tokens of the last iteration per second of it.");
  loss_ =
      gauge("chronos_worker_loss", "Mean training loss of the last iteration (last stage only).");
  bubble_ratio_ =
      gauge("chronos_worker_bubble_ratio", "Measured idle fraction of the last iteration.");
  offload_ratio_ = gauge("chronos_worker_offload_ratio", "Activation offload ratio in force.");
  mfu_ = gauge("chronos_worker_mfu_ratio", "Model FLOPs utilisation of the last iteration.");
  grad_norm_ = gauge("chronos_worker_grad_norm", "Global gradient L2 norm before clipping.");
  faults_ = counter("chronos_worker_faults_total",
                    "Faults this worker reported to the coordinator, since the process started "
                    "(kept after the job ends).");
  last_iteration_ = gauge("chronos_worker_last_iteration_timestamp_seconds",
                          "When the last iteration ended (seconds since the epoch); the "
                          "assignment's start until the first one.");
  info_ = gauge("chronos_worker_info",
                "Build and device metadata (constant 1): chronos_device is --device (cpu, "
                "cuda:N); gpu and UUID as DCGM exporter labels the GPU.");
  info_series_ = &info_->Add({{"version", version}, {"chronos_device", device}});
  info_series_->Set(1);
  connected_ = &gauge("chronos_worker_connected", "1 while the worker holds a live command stream.")
                    ->Add({});
}

WorkerMetrics::~WorkerMetrics() {
  // Stop serving before the families go away.
  server_.reset();
}

absl::Status WorkerMetrics::Serve(const std::string& listen) {
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

void WorkerMetrics::StopServing() { server_.reset(); }

void WorkerMetrics::SetGpu(int cuda_index, const std::string& uuid, int64_t pinned_limit_bytes) {
  device_labels_ = {{"gpu", absl::StrCat(cuda_index)}, {"UUID", uuid}};
  info_->Remove(info_series_);
  std::map<std::string, std::string> l = device_labels_;
  l["version"] = version_;
  l["chronos_device"] = device_;
  info_series_ = &info_->Add(l);
  info_series_->Set(1);
  if (pinned_limit_bytes > 0) {
    pinned_limit_->Add(device_labels_).Set(static_cast<double>(pinned_limit_bytes));
  }
}

std::map<std::string, std::string> WorkerMetrics::LabelsOf(const JobLabels& labels) const {
  std::map<std::string, std::string> l = device_labels_;
  l["chronos_job"] = labels.job;
  l["stage"] = absl::StrCat(labels.stage);
  l["data_rank"] = absl::StrCat(labels.data_rank);
  return l;
}

std::string WorkerMetrics::Render() const {
  if (hook_) hook_();
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& f : rpc::ProcessMetricFamilies()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

void WorkerMetrics::SetConnected(bool connected) { connected_->Set(connected ? 1 : 0); }

std::string WorkerMetrics::FaultKindLabel(v1::FaultKind kind) {
  switch (kind) {
    case v1::FAULT_TRANSPORT:
      return "transport";
    case v1::FAULT_OUT_OF_MEMORY:
      return "out_of_memory";
    case v1::FAULT_DATA:
      return "data";
    case v1::FAULT_INPUT:
      return "input";
    case v1::FAULT_STORAGE:
      return "storage";
    default:
      return "internal";
  }
}

WorkerMetrics::Series* WorkerMetrics::Find(const JobLabels& labels) {
  auto it = series_.find(labels);
  return it == series_.end() ? nullptr : it->second.get();
}

void WorkerMetrics::BeginJob(const JobLabels& labels, int64_t capacity_bytes,
                             double offload_ratio) {
  absl::MutexLock lock(&mu_);
  if (Find(labels) != nullptr) {
    Series* s = Find(labels);
    s->offload_ratio->Set(offload_ratio);
    return;
  }
  const std::map<std::string, std::string> l = LabelsOf(labels);
  auto s = std::make_unique<Series>();
  auto g = [&](GaugeFamily* f) {
    prometheus::Gauge* m = &f->Add(l);
    s->gauges.emplace_back(f, m);
    return m;
  };
  auto c = [&](CounterFamily* f) {
    prometheus::Counter* m = &f->Add(l);
    s->counters.emplace_back(f, m);
    return m;
  };
  s->hbm_allocated = g(hbm_allocated_);
  s->hbm_reserved = g(hbm_reserved_);
  s->hbm_peak = g(hbm_peak_);
  s->pinned_reserved = g(pinned_reserved_);
  s->pinned_peak = g(pinned_peak_);
  s->pinned_fallback = g(pinned_fallback_);
  std::map<std::string, std::string> capacity_labels = l;
  capacity_labels["source"] = device_labels_.empty() ? "budget" : "device";
  prometheus::Gauge* capacity = &hbm_capacity_->Add(capacity_labels);
  s->gauges.emplace_back(hbm_capacity_, capacity);
  capacity->Set(static_cast<double>(capacity_bytes));
  s->last_iteration = g(last_iteration_);
  s->last_iteration->Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  s->act_resident = g(act_resident_);
  s->act_offloaded = g(act_offloaded_);
  s->act_peak = g(act_peak_);
  s->offloaded_total = c(offloaded_total_);
  s->reloaded_total = c(reloaded_total_);
  s->recompute_seconds = c(recompute_seconds_);
  s->iteration_seconds = &iteration_seconds_->Add(l, IterationBuckets());
  s->iterations_total = c(iterations_total_);
  s->tokens_total = c(tokens_total_);
  s->tokens_per_second = g(tokens_per_second_);
  s->bubble_ratio = g(bubble_ratio_);
  s->offload_ratio = g(offload_ratio_);
  s->offload_ratio->Set(offload_ratio);
  s->mfu = g(mfu_);
  s->grad_norm = g(grad_norm_);
  // Not in s->counters: a fault stays counted after its job ends (the
  // Faults panel and increase() see it); a later assignment with the same
  // labels gets the same counters back from the family.
  for (v1::FaultKind kind : kFaultKinds) {
    std::map<std::string, std::string> fl = l;
    fl["kind"] = FaultKindLabel(kind);
    s->faults[kind] = &faults_->Add(fl);
  }
  series_[labels] = std::move(s);
}

void WorkerMetrics::RecordIteration(const JobLabels& labels, const v1::ProgressReport& r,
                                    const IterationDerived& derived) {
  absl::MutexLock lock(&mu_);
  Series* s = Find(labels);
  if (s == nullptr) return;
  const v1::DeviceIteration& d = r.device();
  s->hbm_allocated->Set(static_cast<double>(d.hbm_allocated_bytes()));
  s->hbm_reserved->Set(static_cast<double>(d.hbm_reserved_bytes()));
  s->hbm_peak->Set(static_cast<double>(d.hbm_peak_bytes()));
  s->pinned_reserved->Set(static_cast<double>(d.pinned_reserved_bytes()));
  s->pinned_peak->Set(static_cast<double>(d.pinned_peak_bytes()));
  s->pinned_fallback->Set(static_cast<double>(d.pinned_fallback_bytes()));
  // Resident and offloaded now: the scrape-time hook keeps them live; at an
  // iteration's end resident is the record's, and the peak its own gauge.
  s->act_resident->Set(static_cast<double>(d.resident_activation_bytes()));
  s->act_peak->Set(static_cast<double>(d.peak_activation_bytes()));
  s->offloaded_total->Increment(static_cast<double>(d.offload_copied_bytes()));
  s->reloaded_total->Increment(static_cast<double>(d.reload_copied_bytes()));
  s->recompute_seconds->Increment(d.recompute_seconds());
  const double seconds = d.iteration_seconds();
  s->iteration_seconds->Observe(seconds);
  s->iterations_total->Increment();
  s->tokens_total->Increment(static_cast<double>(r.tokens()));
  s->tokens_per_second->Set(seconds > 0 ? r.tokens() / seconds : 0);
  s->last_iteration->Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  if (r.has_loss()) {
    if (s->loss == nullptr) {
      s->loss = &loss_->Add(LabelsOf(labels));
      s->gauges.emplace_back(loss_, s->loss);
    }
    s->loss->Set(r.loss());
  }
  s->bubble_ratio->Set(derived.bubble_ratio);
  s->offload_ratio->Set(r.offload_ratio());
  s->mfu->Set(derived.mfu);
  s->grad_norm->Set(r.grad_norm());
}

void WorkerMetrics::SetActivationBytes(const JobLabels& labels, int64_t resident,
                                       int64_t offloaded) {
  absl::MutexLock lock(&mu_);
  Series* s = Find(labels);
  if (s == nullptr) return;
  s->act_resident->Set(static_cast<double>(resident));
  s->act_offloaded->Set(static_cast<double>(offloaded));
}

void WorkerMetrics::SetHbmAllocatedBytes(const JobLabels& labels, int64_t allocated,
                                         int64_t reserved) {
  absl::MutexLock lock(&mu_);
  Series* s = Find(labels);
  if (s == nullptr) return;
  s->hbm_allocated->Set(static_cast<double>(allocated));
  s->hbm_reserved->Set(static_cast<double>(reserved));
}

void WorkerMetrics::SetOffloadRatio(const JobLabels& labels, double ratio) {
  absl::MutexLock lock(&mu_);
  Series* s = Find(labels);
  if (s != nullptr) s->offload_ratio->Set(ratio);
}

void WorkerMetrics::RecordFault(const JobLabels& labels, v1::FaultKind kind) {
  absl::MutexLock lock(&mu_);
  Series* s = Find(labels);
  if (s == nullptr) return;
  auto it = s->faults.find(kind);
  if (it == s->faults.end()) it = s->faults.find(v1::FAULT_INTERNAL);
  it->second->Increment();
}

void WorkerMetrics::EndJob(const JobLabels& labels) {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(labels);
  if (it == series_.end()) return;
  Series* s = it->second.get();
  for (auto& [family, m] : s->gauges) family->Remove(m);
  for (auto& [family, m] : s->counters) family->Remove(m);
  iteration_seconds_->Remove(s->iteration_seconds);
  series_.erase(it);
}

}  // namespace chronos::worker
