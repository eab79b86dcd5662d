// Everything chronos-worker is configured with, filled once from flags in
// worker/main.cc; nothing deeper reads flags or the environment.
#ifndef CHRONOS_WORKER_DAEMON_WORKER_OPTIONS_H_
#define CHRONOS_WORKER_DAEMON_WORKER_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace chronos::worker {

struct WorkerOptions {
  std::string coordinator = "127.0.0.1:7070";  // HOST:PORT of the coordinator
  std::string token;                           // bearer token; "" = none
  std::string tls_ca_file;                     // PEM roots: TLS to the coordinator when set
  bool tls = false;                            // TLS with the system roots
  std::string tls_server_name;                 // certificate name override (tests)
  // Prometheus /metrics (HOST:PORT, port 0 = any free port; "" = off).
  std::string metrics_listen = "0.0.0.0:9465";
  // gRPC health service (HOST:PORT, port 0 = any free port; "" = off).
  std::string health_listen = "127.0.0.1:0";
  std::string device = "cpu";  // "cpu" or "cuda:N"
  // Stable name (pod name); "" = the host name, plus "-cudaN" for a GPU, so
  // that one worker per GPU on a node gets a name of its own.
  std::string name;
  std::string advertise_host = "127.0.0.1";  // address peers reach us at
  // Relative checkpoint directories of jobs resolve against this one; ""
  // = the working directory.
  std::string data_dir;
  int64_t host_memory_bytes = 0;  // 0 = measure
  int threads = 0;                // intra-op threads; 0 = LibTorch's default
  // GPU: bound on the pinned host pool of offloaded activations and
  // optimizer state; 0 = half of the host's memory shared by its GPUs.
  int64_t pinned_pool_bytes = 0;
  std::string version = "0.0.0";
  absl::Duration rpc_timeout = absl::Seconds(10);
  absl::Duration rendezvous_timeout = absl::Minutes(5);
  absl::Duration comm_timeout = absl::Minutes(5);
  absl::Duration reconnect_min = absl::Milliseconds(100);
  absl::Duration reconnect_max = absl::Seconds(5);
  // Until the coordinator tells its own interval at registration.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // Called once, from a daemon thread, when the worker must stop for good
  // (the coordinator says another live worker holds its name); main()
  // stops the process with it. The status stays in WorkerDaemon::fatal().
  std::function<void(const absl::Status&)> on_fatal;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_WORKER_OPTIONS_H_
