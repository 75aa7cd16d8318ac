// TCP on 127.0.0.1 for tests: a listening socket on a free port, or a port
// nobody listens on. Test-only, header-only.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace envd::test {

// A socket listening on 127.0.0.1 at a free port (stored in *port), close-on-exec.
inline int listen_loopback(int* port, int backlog = 16) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd, backlog), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// A TCP port on 127.0.0.1 nobody listens on (bound, then released).
inline int closed_port() {
  int port = 0;
  ::close(listen_loopback(&port, 1));
  return port;
}

}  // namespace envd::test
