#include "rpc/metrics_http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chronos::rpc {
namespace {

// A reader that does not take its response within this long is dropped.
constexpr int kSendTimeoutMs = 2000;

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string Response(int code, const char* reason, const std::string& type, const std::string& body,
                     bool head) {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                      head ? "" : body);
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(std::function<std::string()> render)
    : render_(std::move(render)) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("'", listen, "' is not HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string service = absl::StrCat(port);
  const int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (gai != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", listen, ": ", gai_strerror(gai)));
  }
  std::string error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    // Non-blocking: the loop accepts every pending connection at once.
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      listen_fd_ = fd;
      break;
    }
    error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  if (listen_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen, ": ", error));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (pipe2(wake_fd_, O_CLOEXEC) != 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    return absl::UnavailableError("metrics server: pipe failed");
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() {
  if (thread_.joinable()) {
    const char c = 'x';
    (void)!write(wake_fd_[1], &c, 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_fd_[0], &wake_fd_[1]}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void MetricsHttpServer::Loop() {
  std::vector<Conn> conns;  // oldest first
  auto close_conn = [](Conn& c) {
    close(c.fd);
    c.fd = -1;
  };
  while (true) {
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    absl::Time next = absl::InfiniteFuture();
    for (const Conn& c : conns) {
      fds.push_back({c.fd, POLLIN, 0});
      next = std::min(next, c.deadline);
    }
    const int timeout_ms = next == absl::InfiniteFuture()
                               ? -1
                               : static_cast<int>(std::max<int64_t>(
                                     0, absl::ToInt64Milliseconds(next - absl::Now()) + 1));
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && (fds[1].revents & POLLIN)) break;
    for (size_t i = 0; i < conns.size(); ++i) {
      if (n > 0 && (fds[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) && Read(conns[i])) {
        close_conn(conns[i]);
      }
    }
    const absl::Time now = absl::Now();
    for (Conn& c : conns) {
      if (c.fd >= 0 && now >= c.deadline) close_conn(c);
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const Conn& c) { return c.fd < 0; }),
                conns.end());
    if (n > 0 && (fds[0].revents & POLLIN)) {
      while (true) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        if (static_cast<int>(conns.size()) >= kMaxConnections) {
          // Full: the oldest unfinished request makes room, so a client that
          // holds connections open cannot keep a scrape out.
          close_conn(conns.front());
          conns.erase(conns.begin());
        }
        conns.push_back(Conn{fd, std::string(), absl::Now() + kRequestDeadline});
      }
    }
  }
  for (Conn& c : conns) close_conn(c);
}

bool MetricsHttpServer::Read(Conn& c) {
  char buf[1024];
  while (true) {
    const ssize_t r = recv(c.fd, buf, sizeof(buf), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    if (r == 0) return true;  // the peer closed before a whole request
    c.request.append(buf, static_cast<size_t>(r));
    if (c.request.find("\r\n\r\n") != std::string::npos) {
      Answer(c.fd, c.request);
      return true;
    }
    if (c.request.size() >= kMaxRequestBytes) return true;
  }
}

void MetricsHttpServer::Answer(int fd, const std::string& request) {
  // Blocking with a send timeout: the response is small, and a client that
  // does not read it holds the thread at most kSendTimeoutMs.
  const int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  const timeval tv{kSendTimeoutMs / 1000, (kSendTimeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const size_t eol = request.find("\r\n");
  const std::string line = request.substr(0, eol);
  const bool get = absl::StartsWith(line, "GET ");
  const bool head = absl::StartsWith(line, "HEAD ");
  if (!get && !head) {
    WriteAll(fd, Response(405, "Method Not Allowed", "text/plain", "only GET /metrics\n", false));
    return;
  }
  const size_t path_start = line.find(' ') + 1;
  const size_t path_end = line.find_first_of(" ?", path_start);
  const std::string path = line.substr(path_start, path_end - path_start);
  if (path != "/metrics") {
    WriteAll(fd, Response(404, "Not Found", "text/plain", "metrics are at /metrics\n", head));
    return;
  }
  const std::string body = render_();
  WriteAll(fd, Response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, head));
}

}  // namespace chronos::rpc
