// Serves GET /metrics (Prometheus text format 0.0.4) for both daemons; the
// body comes from a callback per request. HTTP/1.1, one request per
// connection ("Connection: close"), GET or HEAD of /metrics, everything else
// 404/405.
//
// Hostile clients cannot silence it: one thread polls every connection at
// once (none is served to the exclusion of the others); each has a
// whole-request deadline, however slowly it sends; at most kMaxConnections
// are open, and a new one evicts the oldest unfinished one, so a scrape is
// answered even while slow or half-open connections pile up; a response is
// written with a send timeout.
//
// Why not prometheus::Exposer: Debian's civetweb starts its threads with a
// fixed, compiled-in stack size, and glibc refuses (EINVAL) any thread
// whose stack cannot hold the process's static TLS, which in a process
// linking LibTorch is larger than that stack, so it cannot start inside
// chronos-worker; and its timeouts apply per read, not per request.
//
// Thread-safe: Start/Stop from one thread; `render` runs on the server
// thread.
#ifndef CHRONOS_RPC_METRICS_HTTP_SERVER_H_
#define CHRONOS_RPC_METRICS_HTTP_SERVER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace chronos::rpc {

class MetricsHttpServer {
 public:
  static constexpr int kMaxConnections = 64;
  static constexpr absl::Duration kRequestDeadline = absl::Seconds(5);
  static constexpr size_t kMaxRequestBytes = 8192;

  explicit MetricsHttpServer(std::function<std::string()> render);
  ~MetricsHttpServer();  // Stop()

  // Binds `listen` (HOST:PORT; port 0 = any free port) and starts serving.
  // kInvalidArgument for a malformed address, kUnavailable when it cannot
  // be bound.
  absl::Status Start(const std::string& listen);
  int port() const { return port_; }
  void Stop();

 private:
  struct Conn {
    int fd = -1;
    std::string request;
    absl::Time deadline;
  };
  void Loop();
  // Reads what `c` has sent; answers and returns true (close it) once the
  // request is complete, too long, or the peer closed.
  bool Read(Conn& c);
  void Answer(int fd, const std::string& request);

  const std::function<std::string()> render_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

}  // namespace chronos::rpc

#endif  // CHRONOS_RPC_METRICS_HTTP_SERVER_H_
