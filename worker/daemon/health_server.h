// The worker's gRPC server: only the standard grpc.health.v1.Health service
// (kubelet gRPC probes, the container HEALTHCHECK via `chronosctl health`).
// The whole server ("") is SERVING while the daemon runs; the service name
// "chronos.v1.Worker" is SERVING only while the worker holds its command
// stream to the coordinator, for readiness checks that care.
//
// The service is implemented here rather than with gRPC's built-in one
// (EnableDefaultHealthCheckService): gRPC 1.51 refuses to start a server
// whose only service is the built-in, callback-based health service ("At
// least one of the completion queues must be frequently polled").
// Thread-safe.
#ifndef CHRONOS_WORKER_DAEMON_HEALTH_SERVER_H_
#define CHRONOS_WORKER_DAEMON_HEALTH_SERVER_H_

#include <grpcpp/server.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace chronos::worker {

inline constexpr char kWorkerHealthService[] = "chronos.v1.Worker";

class HealthServer {
 public:
  HealthServer();
  ~HealthServer();
  // Serves on `listen` (HOST:PORT, port 0 = any). kUnavailable when the
  // address cannot be bound.
  absl::Status Start(const std::string& listen);
  std::string address() const { return address_; }  // HOST:PORT bound
  void SetConnected(bool connected);
  // NOT_SERVING everywhere, then stops the server.
  void Shutdown();

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_HEALTH_SERVER_H_
