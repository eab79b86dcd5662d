// A raw HTTP request to a local port, for tests of the /metrics endpoints:
// a plain socket, so the tests see exactly what a scraper gets (status line,
// headers, body), and a receive timeout so a server that never answers
// fails the test instead of hanging it.
#ifndef CHRONOS_TESTS_TESTING_HTTP_GET_H_
#define CHRONOS_TESTS_TESTING_HTTP_GET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace chronos::testing {

// An open TCP connection to 127.0.0.1:port that sends nothing (-1 if
// refused); the caller closes it.
inline int ConnectOnly(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request_line` (e.g. "GET /metrics HTTP/1.1") to 127.0.0.1:port and
// returns everything the server sent until it closed (or `timeout_seconds`
// passed without data); "" if it refused.
inline std::string HttpRequest(int port, const std::string& request_line,
                               int timeout_seconds = 10) {
  const int fd = ConnectOnly(port);
  if (fd < 0) return "";
  timeval tv{timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string req = request_line + "\r\nHost: localhost\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

}  // namespace chronos::testing

#endif  // CHRONOS_TESTS_TESTING_HTTP_GET_H_
