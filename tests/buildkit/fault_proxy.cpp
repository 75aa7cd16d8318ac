#include "fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace envd::test {
namespace {

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

int connect_to(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

FaultProxy::FaultProxy(std::string upstream_host, int upstream_port)
    : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || stop_fd_ < 0) return;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return;
  }
  listen_fd_ = fd;
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

FaultProxy::~FaultProxy() {
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)::write(stop_fd_, &one, sizeof one);
  }
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& t : threads_) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void FaultProxy::set(Plan plan) {
  std::lock_guard<std::mutex> lock(mutex_);
  plan_ = plan;
}

void FaultProxy::accept_loop() {
  for (;;) {
    std::array<pollfd, 2> fds{pollfd{listen_fd_, POLLIN, 0}, pollfd{stop_fd_, POLLIN, 0}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) return;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++accepted_;
    Plan plan;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      plan = plan_;
    }
    threads_.emplace_back([this, client, plan] { serve(client, plan); });
  }
}

void FaultProxy::serve(int client, Plan plan) {
  if (plan.fault == Fault::blackhole) {
    // Accepted, then silence: read and drop whatever comes until stopped.
    std::array<char, 4096> sink{};
    for (;;) {
      std::array<pollfd, 2> fds{pollfd{client, POLLIN, 0}, pollfd{stop_fd_, POLLIN, 0}};
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
      if ((fds[1].revents & POLLIN) != 0) break;
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
          ::read(client, sink.data(), sink.size()) <= 0) {
        break;
      }
    }
    ::close(client);
    return;
  }
  int upstream = connect_to(upstream_host_, upstream_port_);
  if (upstream < 0) {
    ::close(client);
    return;
  }
  std::size_t from_daemon = 0;
  bool client_open = true;  // still forwarding daemon -> client
  bool daemon_open = true;  // still forwarding client -> daemon
  std::array<char, 16384> buffer{};
  while (client_open || daemon_open) {
    std::array<pollfd, 3> fds{pollfd{daemon_open ? client : -1, POLLIN, 0},
                              pollfd{client_open ? upstream : -1, POLLIN, 0},
                              pollfd{stop_fd_, POLLIN, 0}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if ((fds[2].revents & POLLIN) != 0) break;
    if (plan.delay.count() > 0) std::this_thread::sleep_for(plan.delay);
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::read(client, buffer.data(), buffer.size());
      if (n <= 0 || !write_all(upstream, buffer.data(), static_cast<std::size_t>(n))) {
        daemon_open = false;
        ::shutdown(upstream, SHUT_WR);
      }
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::read(upstream, buffer.data(), buffer.size());
      if (n <= 0) {
        client_open = false;
        ::shutdown(client, SHUT_WR);
        continue;
      }
      std::size_t pass = static_cast<std::size_t>(n);
      bool trip = false;
      if (plan.fault == Fault::reset || plan.fault == Fault::truncate ||
          plan.fault == Fault::half_close) {
        if (from_daemon + pass >= plan.after_bytes) {
          pass = plan.after_bytes - from_daemon;
          trip = true;
        }
      }
      if (pass > 0 && !write_all(client, buffer.data(), pass)) {
        client_open = false;
      }
      from_daemon += pass;
      if (trip) {
        if (plan.fault == Fault::reset) {
          linger hard{1, 0};  // close with RST, not FIN
          ::setsockopt(client, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
          break;
        }
        if (plan.fault == Fault::truncate) break;
        // half_close: the client sees end-of-stream; what it sends still
        // reaches the daemon, whose answers are dropped.
        ::shutdown(client, SHUT_WR);
        client_open = false;
        plan.fault = Fault::none;
        while (daemon_open) {
          std::array<pollfd, 3> rest{pollfd{client, POLLIN, 0}, pollfd{upstream, POLLIN, 0},
                                     pollfd{stop_fd_, POLLIN, 0}};
          if (::poll(rest.data(), rest.size(), -1) < 0 && errno != EINTR) break;
          if ((rest[2].revents & POLLIN) != 0) break;
          if ((rest[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
              ::read(upstream, buffer.data(), buffer.size()) <= 0) {
            break;
          }
          if ((rest[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            ssize_t n2 = ::read(client, buffer.data(), buffer.size());
            if (n2 <= 0 || !write_all(upstream, buffer.data(), static_cast<std::size_t>(n2))) {
              daemon_open = false;
            }
          }
        }
        break;
      }
    }
  }
  ::close(upstream);
  ::close(client);
}

}  // namespace envd::test
