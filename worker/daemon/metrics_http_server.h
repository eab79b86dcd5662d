// Serves GET /metrics (Prometheus text format 0.0.4) on one thread; the
// body comes from a callback (WorkerMetrics::Render) per request.
//
// Why not prometheus::Exposer, as the coordinator uses: Debian's civetweb
// starts its threads with a fixed, compiled-in stack size, and glibc
// refuses (EINVAL) any thread whose stack cannot hold the process's static
// TLS, which in a process linking LibTorch (OpenBLAS, glog, ...) is larger
// than that stack. The Exposer therefore cannot start inside
// chronos-worker. This server is the smallest replacement: HTTP/1.1, one
// request per connection ("Connection: close"), GET or HEAD of /metrics,
// everything else 404/405; requests are read with a timeout so a stuck
// client cannot wedge it.
//
// Thread-safe: Start/Stop from one thread; `render` runs on the server
// thread.
#ifndef CHRONOS_WORKER_DAEMON_METRICS_HTTP_SERVER_H_
#define CHRONOS_WORKER_DAEMON_METRICS_HTTP_SERVER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace chronos::worker {

class MetricsHttpServer {
 public:
  explicit MetricsHttpServer(std::function<std::string()> render);
  ~MetricsHttpServer();  // Stop()

  // Binds `listen` (HOST:PORT; port 0 = any free port) and starts serving.
  // kInvalidArgument for a malformed address, kUnavailable when it cannot
  // be bound.
  absl::Status Start(const std::string& listen);
  int port() const { return port_; }
  void Stop();

 private:
  void Loop();
  void Serve(int fd);

  const std::function<std::string()> render_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_METRICS_HTTP_SERVER_H_
