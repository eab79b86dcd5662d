#include "worker/daemon/worker_daemon.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "rpc/address.h"
#include "rpc/credentials.h"
#include "worker/daemon/grpc_kv_store.h"
#include "worker/daemon/host_probe.h"
#include "worker/stage_launcher.h"

namespace chronos::worker {

WorkerDaemon::WorkerDaemon(WorkerOptions options)
    : o_(std::move(options)),
      metrics_(o_.version, o_.device),
      heartbeat_interval_(o_.heartbeat_interval) {}

WorkerDaemon::~WorkerDaemon() { Shutdown(); }

absl::Status WorkerDaemon::CheckOptions(const WorkerOptions& o) {
  if (!o.metrics_listen.empty()) {
    if (absl::Status s = rpc::CheckListenAddress("--metrics-listen", o.metrics_listen); !s.ok()) {
      return s;
    }
  }
  if (!o.health_listen.empty()) {
    if (absl::Status s = rpc::CheckListenAddress("--listen", o.health_listen, /*grpc_server=*/true);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = rpc::CheckTarget(o.coordinator); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--coordinator: ", s.message()));
  }
  return CudaIndex(o.device).status();
}

absl::Status WorkerDaemon::Start() {
  if (absl::Status s = CheckOptions(o_); !s.ok()) return s;
  absl::StatusOr<DeviceDescription> device = DescribeDevice(o_.device);
  if (!device.ok()) return device.status();
  device_memory_bytes_ = device->memory_bytes;
  if (device->cuda_index >= 0) {
    metrics_.SetGpu(device->cuda_index, device->uuid, PinnedPoolBytes(o_.pinned_pool_bytes));
  }

  metrics_.SetCollectHook([this] {
    absl::MutexLock lock(&mu_);
    if (run_ != nullptr) run_->RefreshLiveMetrics();
  });
  if (!o_.metrics_listen.empty()) {
    absl::Status s = metrics_.Serve(o_.metrics_listen);
    if (!s.ok()) return s;
  }
  if (!o_.health_listen.empty()) {
    absl::Status s = health_.Start(o_.health_listen);
    if (!s.ok()) return s;
  }

  rpc::ChannelOptions co;
  co.target = o_.coordinator;
  co.tls = o_.tls || !o_.tls_ca_file.empty();
  co.ca_file = o_.tls_ca_file;
  co.server_name_override = o_.tls_server_name;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = rpc::CreateChannel(co);
  if (!channel.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--coordinator/--tls-ca: ", channel.status().message()));
  }
  client_ = std::make_unique<CoordinatorClient>(*channel, o_.token, o_.rpc_timeout);
  store_ = std::make_shared<GrpcKeyValueStore>(client_->stub(), o_.token, o_.rpc_timeout);

  const int64_t host_memory = o_.host_memory_bytes > 0 ? o_.host_memory_bytes : HostMemoryBytes();
  const double bandwidth = MeasureCopyBandwidth();
  info_.set_name(o_.name.empty() ? DefaultWorkerName(HostName(), o_.device) : o_.name);
  info_.set_device(o_.device);
  info_.set_device_name(device->device_name);
  // A CPU worker's "device memory" is the host's.
  info_.set_hbm_bytes(device_memory_bytes_ > 0 ? device_memory_bytes_ : host_memory);
  info_.set_host_memory_bytes(host_memory);
  info_.set_h2d_bandwidth(bandwidth);
  info_.set_d2h_bandwidth(bandwidth);
  info_.set_advertise_host(o_.advertise_host);
  info_.set_metrics_endpoint(metrics_.address());
  info_.set_version(o_.version);
  LOG(INFO) << "worker " << info_.name() << ": device " << o_.device << " (" << info_.device_name()
            << "), host memory " << host_memory << " bytes, copy bandwidth " << bandwidth / 1e9
            << " GB/s";

  session_ = std::thread([this] { SessionLoop(); });
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  return absl::OkStatus();
}

void WorkerDaemon::Shutdown() {
  std::unique_ptr<AssignmentRun> run;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    run = std::move(run_);
  }
  if (client_) client_->CancelAttach();
  if (run != nullptr && !run->finished()) {
    // Tell the coordinator now rather than by silence.
    v1::FaultReport f;
    f.set_job(run->assignment().job());
    f.set_attempt(run->assignment().attempt());
    f.set_kind(v1::FAULT_INTERNAL);
    f.set_message("the worker is shutting down (SIGTERM)");
    f.set_iteration(run->iteration() + 1);
    absl::Status s = client_->ReportFault(f);
    if (!s.ok()) LOG(WARNING) << "could not report the shutdown: " << s;
  }
  run.reset();  // stops and joins
  if (session_.joinable()) session_.join();
  if (heartbeat_.joinable()) heartbeat_.join();
  metrics_.SetConnected(false);
  metrics_.StopServing();  // its hook locks mu_, which dies with us
  health_.Shutdown();
}

bool WorkerDaemon::Pause(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return shutting_down_; };
  mu_.AwaitWithTimeout(absl::Condition(&stopping), d);
  return !shutting_down_;
}

absl::Status WorkerDaemon::fatal() const {
  absl::MutexLock lock(&mu_);
  return fatal_;
}

void WorkerDaemon::SessionLoop() {
  std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = o_.reconnect_min;
  auto next_backoff = [&]() {
    // Full jitter: a restarted coordinator is not hit by every worker at once.
    std::uniform_real_distribution<double> u(0.5, 1.0);
    const absl::Duration d = backoff * u(rng);
    // At least once per heartbeat interval: a restarted coordinator declares
    // a worker dead after a few missed intervals, so a longer pause could
    // outlast that window and cost the job a recovery.
    absl::Duration cap = o_.reconnect_max;
    {
      absl::MutexLock lock(&mu_);
      cap = std::min(cap, heartbeat_interval_);
    }
    backoff = std::min(backoff * 2, std::max(cap, o_.reconnect_min));
    return d;
  };
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_) return;
    }
    absl::StatusOr<v1::RegisterResponse> reg = client_->Register(info_);
    if (absl::IsAlreadyExists(reg.status())) {
      // Retrying would take the name back and push the other worker out,
      // which would do the same to this one: the two would alternate for
      // ever.
      LOG(ERROR) << "register with " << o_.coordinator << ": " << reg.status().message()
                 << "; stopping";
      {
        absl::MutexLock lock(&mu_);
        fatal_ = reg.status();
      }
      if (o_.on_fatal) o_.on_fatal(reg.status());
      return;
    }
    if (!reg.ok()) {
      LOG(WARNING) << "register with " << o_.coordinator << ": " << reg.status();
      if (!Pause(next_backoff())) return;
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      registered_ = true;
      ++registration_;
      if (reg->heartbeat_interval_ms() > 0) {
        heartbeat_interval_ = absl::Milliseconds(reg->heartbeat_interval_ms());
      }
    }
    LOG(INFO) << "registered with " << o_.coordinator << " as " << reg->worker_id();
    absl::Status s = client_->Attach(
        [&] {
          metrics_.SetConnected(true);
          health_.SetConnected(true);
          backoff = o_.reconnect_min;
        },
        [this](const v1::WorkerCommand& c) { Dispatch(c); });
    metrics_.SetConnected(false);
    health_.SetConnected(false);
    {
      absl::MutexLock lock(&mu_);
      registered_ = false;
      if (shutting_down_) return;
    }
    LOG(WARNING) << "command stream ended: " << s << "; reconnecting";
    if (!Pause(next_backoff())) return;
  }
}

void WorkerDaemon::HeartbeatLoop() {
  while (true) {
    absl::Duration interval;
    bool registered;
    std::string job;
    int attempt = 0;
    int64_t iteration = 0;
    {
      absl::MutexLock lock(&mu_);
      interval = heartbeat_interval_;
      registered = registered_;
      if (run_ != nullptr && !run_->finished()) {
        job = run_->assignment().job();
        attempt = run_->assignment().attempt();
        iteration = run_->iteration();
      }
    }
    if (registered) {
      absl::StatusOr<bool> known = client_->Heartbeat(job, attempt, iteration);
      if (known.ok() && !*known) {
        LOG(WARNING) << "the coordinator no longer knows this worker; "
                        "registering again";
        client_->CancelAttach();
      }
    }
    absl::MutexLock lock(&mu_);
    const int64_t seen = registration_;
    auto wake = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return shutting_down_ || registration_ != seen;
    };
    mu_.AwaitWithTimeout(absl::Condition(&wake), interval);
    if (shutting_down_) return;
  }
}

void WorkerDaemon::Dispatch(const v1::WorkerCommand& command) {
  switch (command.command_case()) {
    case v1::WorkerCommand::kAssign:
      Assign(command.assign());
      return;
    case v1::WorkerCommand::kPolicy: {
      const v1::PolicyUpdate& u = command.policy();
      absl::MutexLock lock(&mu_);
      if (run_ != nullptr && run_->Matches(u.job(), u.attempt())) {
        run_->UpdatePolicy(u.generation(), u.schedule(), u.offload_ratio());
      }
      return;
    }
    case v1::WorkerCommand::kCheckpoint: {
      const v1::CheckpointCommand& c = command.checkpoint();
      absl::MutexLock lock(&mu_);
      if (run_ != nullptr && run_->Matches(c.job(), c.attempt())) {
        run_->RequestCheckpoint();
      }
      return;
    }
    case v1::WorkerCommand::kStop: {
      const v1::StopCommand& c = command.stop();
      absl::MutexLock lock(&mu_);
      if (run_ != nullptr && run_->Matches(c.job(), c.attempt())) {
        run_->Stop(c.reason().empty() ? "stopped by the coordinator" : c.reason());
      }
      return;
    }
    default:
      LOG(WARNING) << "ignoring an unknown command";
  }
}

void WorkerDaemon::Assign(const v1::Assignment& a) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return;
  if (run_ != nullptr && run_->Matches(a.job(), a.attempt())) {
    // Re-sent after a reconnect or a coordinator restart: the same attempt
    // goes on; only a newer policy in it is news, and a restarted
    // coordinator has lost the reports it had not stored yet.
    run_->UpdatePolicy(a.policy_generation(), a.schedule(), a.offload_ratio());
    run_->ResendUnacknowledgedProgress();
    return;
  }
  LOG(INFO) << "assigned job " << a.job() << " attempt " << a.attempt() << ", stage " << a.device();
  std::unique_ptr<AssignmentRun> previous = std::move(run_);
  if (previous != nullptr) previous->Stop("replaced by a new assignment");
  AssignmentServices services;
  services.options = &o_;
  services.client = client_.get();
  services.metrics = &metrics_;
  services.store = store_;
  services.device_memory_bytes = device_memory_bytes_;
  run_ = std::make_unique<AssignmentRun>(a, std::move(services), std::move(previous));
}

}  // namespace chronos::worker
