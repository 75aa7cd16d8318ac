#include "fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

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

bool unix_address(const std::filesystem::path& path, sockaddr_un& address) {
  address = {};
  address.sun_family = AF_UNIX;
  const std::string& text = path.native();
  if (text.size() >= sizeof address.sun_path) return false;
  std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
  return true;
}

// One direction of a proxied connection: bytes read from `from` go to `to`.
struct Leg {
  int from;
  int to;
  bool open = true;       // still reading `from`
  bool dropping = false;  // reading `from` but forwarding nothing (after a half-close)
};

}  // namespace

FaultProxy::FaultProxy(std::string upstream_host, int upstream_port)
    : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
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
  port_ = ntohs(address.sin_port);
  start(fd);
}

FaultProxy::FaultProxy(std::filesystem::path listen_socket, std::filesystem::path upstream_socket)
    : upstream_socket_(std::move(upstream_socket)), listen_socket_(std::move(listen_socket)) {
  sockaddr_un address{};
  if (!unix_address(listen_socket_, address)) return;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::unlink(listen_socket_.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 64) != 0) {
    ::close(fd);
    return;
  }
  start(fd);
}

void FaultProxy::start(int listen_fd) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    ::close(listen_fd);
    return;
  }
  listen_fd_ = listen_fd;
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
  if (!listen_socket_.empty()) ::unlink(listen_socket_.c_str());
}

void FaultProxy::set(Plan plan) {
  std::lock_guard<std::mutex> lock(mutex_);
  plan_ = plan;
  plan_set_at_ = accepted_.load();
}

int FaultProxy::connect_upstream() const {
  if (!upstream_socket_.empty()) {
    sockaddr_un address{};
    if (!unix_address(upstream_socket_, address)) return -1;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  ::inet_pton(AF_INET, upstream_host_.c_str(), &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
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
    Plan plan;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      plan = plan_;
      if (accepted_.load() - plan_set_at_ < plan.spare_connections) plan = Plan{};
    }
    ++accepted_;
    threads_.emplace_back([this, client, plan] { serve(client, plan); });
  }
}

// Waits until `fd` is readable; false when the proxy stops first.
bool FaultProxy::wait_readable(int fd) const {
  for (;;) {
    std::array<pollfd, 2> fds{pollfd{fd, POLLIN, 0}, pollfd{stop_fd_, POLLIN, 0}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if ((fds[1].revents & POLLIN) != 0) return false;
    return true;
  }
}

void FaultProxy::serve(int client, Plan plan) {
  std::array<char, 16384> buffer{};
  // The client's first piece, read before anything else when the plan picks
  // connections by their request.
  std::string first;
  if (!plan.request_contains.empty()) {
    ssize_t n = wait_readable(client) ? ::read(client, buffer.data(), buffer.size()) : -1;
    if (n <= 0) {
      ::close(client);
      return;
    }
    first.assign(buffer.data(), static_cast<std::size_t>(n));
    if (first.find(plan.request_contains) == std::string::npos) plan = Plan{};
  }
  if (plan.fault != Fault::none) ++faulted_;
  if (plan.fault == Fault::blackhole) {
    // Accepted, then silence: read and drop whatever comes until stopped.
    while (wait_readable(client) && ::read(client, buffer.data(), buffer.size()) > 0) {
    }
    ::close(client);
    return;
  }
  int upstream = connect_upstream();
  if (upstream < 0) {
    ::close(client);
    return;
  }
  // legs[0]: client -> daemon, legs[1]: daemon -> client.
  std::array<Leg, 2> legs{Leg{client, upstream}, Leg{upstream, client}};
  Leg& counted = legs[plan.counted == Direction::from_client ? 0 : 1];
  bool armed = plan.fault == Fault::reset || plan.fault == Fault::truncate ||
               plan.fault == Fault::half_close;
  std::size_t passed = 0;  // bytes of the counted leg let through
  bool done = false;
  // Forwards `n` bytes read from leg's source, tripping the fault on the way.
  auto forward = [&](Leg& leg, const char* data, std::size_t n) {
    if (leg.dropping) return;
    std::size_t pass = n;
    bool trip = false;
    if (armed && &leg == &counted && passed + pass >= plan.after_bytes) {
      pass = plan.after_bytes - passed;
      trip = true;
    }
    if (pass > 0 && !write_all(leg.to, data, pass)) {
      leg.open = false;
      ::shutdown(leg.from, SHUT_RD);
    }
    if (&leg == &counted) passed += pass;
    if (!trip) return;
    armed = false;
    if (plan.fault == Fault::reset) {
      linger hard{1, 0};  // close the client's connection with RST, not FIN
      ::setsockopt(client, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
      done = true;
    } else if (plan.fault == Fault::truncate) {
      done = true;
    } else {
      // half_close: the counted leg's reader sees end-of-stream; what
      // follows on it is read and dropped, the other leg still flows.
      ::shutdown(leg.to, SHUT_WR);
      leg.dropping = true;
    }
  };
  if (!first.empty()) forward(legs[0], first.data(), first.size());
  while (!done && (legs[0].open || legs[1].open)) {
    std::array<pollfd, 3> fds{pollfd{legs[0].open ? client : -1, POLLIN, 0},
                              pollfd{legs[1].open ? upstream : -1, POLLIN, 0},
                              pollfd{stop_fd_, POLLIN, 0}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if ((fds[2].revents & POLLIN) != 0) break;
    if (plan.delay.count() > 0) std::this_thread::sleep_for(plan.delay);
    for (std::size_t i = 0; i < legs.size() && !done; ++i) {
      Leg& leg = legs[i];
      if (!leg.open || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = ::read(leg.from, buffer.data(), buffer.size());
      if (n <= 0) {
        leg.open = false;
        if (!leg.dropping) ::shutdown(leg.to, SHUT_WR);
        continue;
      }
      forward(leg, buffer.data(), static_cast<std::size_t>(n));
    }
  }
  ::close(upstream);
  ::close(client);
}

}  // namespace envd::test
