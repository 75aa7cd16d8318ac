// A loopback proxy that sits between envd and a daemon and misbehaves on
// command, for the fault-injection tests. It listens on 127.0.0.1 in front of
// a TCP daemon, or on a unix socket in front of a unix-socket daemon (a
// buildkitd, a Docker Engine). It can black-hole a connection (accept, never
// connect on, never answer), delay every piece it forwards, or, once a given
// number of bytes has passed in the counted direction (the daemon's answers,
// or what the client sends), reset the client's connection, close it
// (truncating both streams), or half-close the counted direction (its reader
// sees end-of-stream while the other direction still flows). A unix socket
// has no RST: there a reset reaches the client as a close.
//
// The plan is read when a connection is accepted, so clearing it lets the
// next connection through untouched: a retry must then succeed. A plan can
// spare the first connections after set(), or pick the connections whose
// request contains a text, to land a fault on one call of a client that
// opens a connection per call (the Engine API).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace envd::test {

class FaultProxy {
 public:
  enum class Fault { none, blackhole, delay, reset, truncate, half_close };
  // Whose bytes after_bytes counts.
  enum class Direction { from_daemon, from_client };

  struct Plan {
    Fault fault = Fault::none;
    std::size_t after_bytes = 0;         // reset / truncate / half_close: bytes first let through
    std::chrono::milliseconds delay{0};  // delay: before each piece, both ways
    Direction counted = Direction::from_daemon;
    std::size_t spare_connections = 0;  // connections after set() that pass untouched
    // When set, only a connection whose first bytes from the client contain
    // this text gets the fault (an Engine API client sends one request per
    // connection: "/containers/create?" picks that call).
    std::string request_contains;
  };

  // In front of upstream_host:upstream_port; listens on 127.0.0.1 (a free port).
  FaultProxy(std::string upstream_host, int upstream_port);
  // In front of the unix socket `upstream_socket`; listens on `listen_socket`
  // (created, and removed again by the destructor).
  FaultProxy(std::filesystem::path listen_socket, std::filesystem::path upstream_socket);
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;
  // Closes every connection and joins every thread.
  ~FaultProxy();

  bool ok() const { return listen_fd_ >= 0; }
  int port() const { return port_; }
  // "127.0.0.1:<port>", or the listening socket's path.
  std::string address() const {
    return listen_socket_.empty() ? "127.0.0.1:" + std::to_string(port_) : listen_socket_.string();
  }

  void set(Plan plan);
  // Connections accepted so far.
  std::size_t accepted() const { return accepted_.load(); }
  // Connections the plan's fault was applied to so far (with request_contains,
  // those whose request matched).
  std::size_t faulted() const { return faulted_.load(); }

 private:
  void start(int listen_fd);
  int connect_upstream() const;
  void accept_loop();
  bool wait_readable(int fd) const;
  void serve(int client, Plan plan);

  std::string upstream_host_;
  int upstream_port_ = 0;
  std::filesystem::path upstream_socket_;
  std::filesystem::path listen_socket_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: written once to stop every loop
  int port_ = 0;
  std::atomic<std::size_t> accepted_{0};
  std::atomic<std::size_t> faulted_{0};
  std::mutex mutex_;
  Plan plan_;
  std::size_t plan_set_at_ = 0;  // accepted_ when plan_ was set
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace envd::test
