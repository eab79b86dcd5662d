// The coordinator daemon as an object: it owns the job store, worker
// registry, rendezvous store, job controller, metrics, the gRPC server
// (ControlService, WorkerService, grpc.health.v1, reflection) and the
// maintenance thread that detects dead workers and admits jobs. main.cc
// and the tests create it the same way.
//
// Lifecycle: Create (opens the store, loads jobs) -> Start (binds ports,
// serves) -> Shutdown (health NOT_SERVING, streams told to end, server
// drained within the grace period, store closed). Create/Start/Shutdown
// from one thread; the accessors from any.
#ifndef CHRONOS_COORDINATOR_COORDINATOR_H_
#define CHRONOS_COORDINATOR_COORDINATOR_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/control_service.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/job_controller.h"
#include "coordinator/job_store.h"
#include "coordinator/kv_store.h"
#include "coordinator/metrics.h"
#include "coordinator/worker_registry.h"
#include "coordinator/worker_service.h"

namespace chronos::coordinator {

class Coordinator {
 public:
  // Opens the store (`store` if given, else SQLite in options.data_dir, else
  // in memory) and loads its jobs. Fails on bad options or an unreadable
  // store; serves nothing yet.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(
      CoordinatorOptions options, std::unique_ptr<JobStore> store = nullptr);
  // The checks of `options` that Create makes before it touches anything
  // (addresses, intervals, TLS pairs): kInvalidArgument naming the flag.
  // `chronos-coordinator --check-flags` runs them alone.
  static absl::Status CheckOptions(const CoordinatorOptions& options);
  ~Coordinator();  // Shutdown(zero grace) if still running

  // Binds the gRPC and metrics ports and starts serving. kUnavailable when
  // a port cannot be bound, kInvalidArgument for unreadable TLS files.
  absl::Status Start();
  // Idempotent. Calls still running after `grace` are cancelled.
  void Shutdown(absl::Duration grace);

  // HOST:PORT actually bound (port 0 resolved); valid after Start.
  std::string grpc_address() const { return grpc_address_; }
  std::string metrics_address() const { return metrics_->address(); }

  // One maintenance pass (liveness, admission, gauges) now; the thread
  // does the same every maintenance interval. Tests call it after moving a
  // FakeClock.
  void RunMaintenance() { controller_->Tick(); }

  JobController* controller() { return controller_.get(); }
  WorkerRegistry* workers() { return workers_.get(); }
  KvStore* kv() { return kv_.get(); }
  Metrics* metrics() { return metrics_.get(); }

 private:
  explicit Coordinator(CoordinatorOptions options);
  void MaintenanceLoop();

  CoordinatorOptions options_;
  Clock* clock_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<WorkerRegistry> workers_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<JobController> controller_;
  std::unique_ptr<ControlServiceImpl> control_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string grpc_address_;
  std::thread maintenance_;
  bool started_ = false;
  bool stopped_ = false;

  absl::Mutex stop_mu_;
  absl::CondVar stop_cv_;
  bool stop_requested_ ABSL_GUARDED_BY(stop_mu_) = false;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_COORDINATOR_H_
