#include "coordinator/coordinator.h"

#include <glog/logging.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/in_memory_job_store.h"
#include "coordinator/sqlite_job_store.h"
#include "rpc/address.h"
#include "rpc/auth.h"
#include "rpc/credentials.h"
#include "rpc/limits.h"

namespace chronos::coordinator {

Coordinator::Coordinator(CoordinatorOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()) {}

absl::Status Coordinator::CheckOptions(const CoordinatorOptions& options) {
  if (absl::Status s = rpc::CheckListenAddress("--listen", options.listen, /*grpc_server=*/true);
      !s.ok()) {
    return s;
  }
  if (!options.metrics_listen.empty()) {
    if (absl::Status s = rpc::CheckListenAddress("--metrics-listen", options.metrics_listen);
        !s.ok()) {
      return s;
    }
  }
  if (options.heartbeat_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--heartbeat-interval-ms must be > 0");
  }
  if (options.heartbeat_misses < 1) {
    return absl::InvalidArgumentError("--heartbeat-misses must be >= 1");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  if (options.planning.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--plan-deadline-seconds must be > 0");
  }
  if (options.planning.threads < 0) {
    return absl::InvalidArgumentError("--planner-threads must be >= 0");
  }
  if (options.planning.max_waiting < 1) {
    return absl::InvalidArgumentError("the planner's queue must hold at least one job");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorOptions options,
                                                                 std::unique_ptr<JobStore> store) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  if (options.maintenance_interval <= absl::ZeroDuration()) {
    options.maintenance_interval = std::max(absl::Milliseconds(10), options.heartbeat_interval / 5);
  }
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(options)));
  const CoordinatorOptions& o = c->options_;
  if (store != nullptr) {
    c->store_ = std::move(store);
  } else if (!o.data_dir.empty()) {
    absl::StatusOr<std::unique_ptr<SqliteJobStore>> sqlite =
        SqliteJobStore::OpenInDirectory(o.data_dir);
    if (!sqlite.ok()) return sqlite.status();
    c->store_ = std::move(*sqlite);
  } else {
    c->store_ = std::make_unique<InMemoryJobStore>();
  }
  c->metrics_ = std::make_unique<Metrics>(o.version);
  c->workers_ =
      std::make_unique<WorkerRegistry>(c->clock_, o.heartbeat_interval, o.heartbeat_misses);
  c->kv_ = std::make_unique<KvStore>();
  c->controller_ = std::make_unique<JobController>(
      c->store_.get(), c->workers_.get(), c->kv_.get(), c->metrics_.get(), c->clock_,
      o.stream_poll_interval, o.recovery, o.replanner,
      PathRoots{o.allowed_data_roots, o.allowed_checkpoint_roots}, o.planning);
  absl::Status s = c->controller_->Load();
  if (!s.ok()) return s;
  c->control_service_ =
      std::make_unique<ControlServiceImpl>(c->controller_.get(), c->workers_.get());
  WorkerServiceImpl::Options wo;
  wo.heartbeat_interval = o.heartbeat_interval;
  wo.poll_interval = o.stream_poll_interval;
  wo.max_store_wait = o.max_store_wait;
  c->worker_service_ = std::make_unique<WorkerServiceImpl>(c->workers_.get(), c->controller_.get(),
                                                           c->kv_.get(), wo);
  return c;
}

Coordinator::~Coordinator() { Shutdown(absl::ZeroDuration()); }

absl::Status Coordinator::Start() {
  if (started_) return absl::FailedPreconditionError("already started");
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      rpc::MakeServerCredentials(options_.tls_cert_file, options_.tls_key_file);
  if (!creds.ok()) return creds.status();

  // Both process-wide switches; they only affect servers built afterwards.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.listen, *creds, &port);
  rpc::ApplyServerLimits(&builder);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  // Metrics first, so calls the auth check rejects are counted too.
  interceptors.push_back(metrics_->MakeInterceptorFactory());
  if (!options_.token.empty()) {
    interceptors.push_back(rpc::MakeTokenAuthInterceptorFactory(options_.token));
  }
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(control_service_.get());
  builder.RegisterService(worker_service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen, " (address in use or not local?)"));
  }
  const size_t colon = options_.listen.rfind(':');
  grpc_address_ = absl::StrCat(
      colon == std::string::npos ? options_.listen : options_.listen.substr(0, colon), ":", port);
  if (!options_.metrics_listen.empty()) {
    absl::Status s = metrics_->Serve(options_.metrics_listen);
    if (!s.ok()) {
      server_->Shutdown();
      server_.reset();
      return s;
    }
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  workers_->StartRestoredTimeouts();
  started_ = true;
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
  LOG(INFO) << "coordinator serving gRPC on " << grpc_address_
            << (options_.token.empty() ? " (no token)" : " (token required)")
            << (options_.tls_cert_file.empty() ? "" : " with TLS");
  return absl::OkStatus();
}

void Coordinator::MaintenanceLoop() {
  absl::Time next_backup = absl::Now() + options_.store_backup_interval;
  absl::MutexLock lock(&stop_mu_);
  while (!stop_requested_) {
    if (stop_cv_.WaitWithTimeout(&stop_mu_, options_.maintenance_interval)) {
      // Timed out: time for a pass. Run it without our lock held.
      stop_mu_.Unlock();
      controller_->Tick();
      if (absl::Now() >= next_backup) {
        next_backup = absl::Now() + options_.store_backup_interval;
        absl::Status s = store_->Backup();
        if (!s.ok()) LOG(WARNING) << "job store backup failed: " << s;
      }
      stop_mu_.Lock();
    }
  }
}

void Coordinator::Shutdown(absl::Duration grace) {
  if (stopped_) return;
  stopped_ = true;
  if (started_) {
    LOG(INFO) << "coordinator shutting down";
    // Load balancers and probes stop sending new work first.
    server_->GetHealthCheckService()->SetServingStatus(false);
    // Long-lived streams end on their own within one poll interval.
    controller_->Shutdown();
    worker_service_->Shutdown();
    workers_->CloseAll();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
    {
      absl::MutexLock lock(&stop_mu_);
      stop_requested_ = true;
      stop_cv_.SignalAll();
    }
    maintenance_.join();
  } else if (controller_) {
    // Never served, but a job found PLANNING at load may be being planned.
    controller_->Shutdown();
  }
  // Every write went through a committed transaction; closing only
  // checkpoints the WAL. Jobs that were running stay RUNNING in the store.
  store_.reset();
}

}  // namespace chronos::coordinator
