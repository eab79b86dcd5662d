// Everything that configures one coordinator process, filled once by main.cc
// from the command line (or by a test) and passed to Coordinator::Create.
// Nothing in the coordinator reads flags or the environment itself.
#ifndef CHRONOS_COORDINATOR_COORDINATOR_OPTIONS_H_
#define CHRONOS_COORDINATOR_COORDINATOR_OPTIONS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/clock.h"
#include "coordinator/planning_options.h"
#include "coordinator/recovery_options.h"
#include "coordinator/replanner.h"

namespace chronos::coordinator {

struct CoordinatorOptions {
  // gRPC address, HOST:PORT; port 0 picks a free port (see
  // Coordinator::grpc_address()).
  std::string listen = "0.0.0.0:7070";
  // Prometheus /metrics, HOST:PORT; port 0 picks one; "" serves no HTTP
  // (the registry still exists, tests render it directly).
  std::string metrics_listen = "0.0.0.0:9464";
  // Directory of the SQLite job store (created if missing); "" keeps jobs
  // in memory only, for tests.
  std::string data_dir;
  // Bearer token every RPC except health must carry; "" disables auth.
  // main.cc reads it from --token-file; it is never logged.
  std::string token;
  // TLS on the gRPC port when both are set (PEM files).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Workers heartbeat every interval; a worker is dead after `misses`
  // intervals without one (torchrun's 5 s x 3).
  absl::Duration heartbeat_interval = absl::Seconds(5);
  int heartbeat_misses = 3;
  // How often the maintenance loop checks liveness and admits pending jobs
  // when nothing else wakes it. Zero: heartbeat_interval / 5.
  absl::Duration maintenance_interval = absl::ZeroDuration();
  // Longest time a streaming handler (Attach, WatchJob, StoreGet) waits
  // before re-checking cancellation and shutdown: bounds shutdown latency.
  absl::Duration stream_poll_interval = absl::Milliseconds(200);
  // How often the SQLite store writes its last good copy
  // (<data-dir>/chronos.db.backup) besides once at every start.
  absl::Duration store_backup_interval = absl::Minutes(10);
  // Upper bound on StoreGet's wait whatever the request asks.
  absl::Duration max_store_wait = absl::Minutes(10);
  // Restart limit, back-off and re-planning of jobs whose worker died or
  // faulted (see JobController).
  RecoveryOptions recovery;
  // The background planner of submitted jobs and the planning time limit.
  PlanningOptions planning;
  // Time source; nullptr = the wall clock. Not owned.
  Clock* clock = nullptr;
  // When set, jobs may only name data.path and training.checkpoint_dir
  // under these directories (absolute paths); the workers check again.
  std::vector<std::string> allowed_data_roots;
  std::vector<std::string> allowed_checkpoint_roots;
  // Makes every plan of a job; nullptr = the standard Replanner (tests
  // stand in a slow one).
  std::shared_ptr<Replanner> replanner;
  std::string version = "0.1.0";
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_COORDINATOR_OPTIONS_H_
