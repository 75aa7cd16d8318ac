// A loopback TCP proxy that sits between envd and a daemon and misbehaves on
// command, for the fault-injection tests: it can black-hole a connection
// (accept, never connect on, never answer), delay every piece it forwards,
// or, once the daemon has sent a given number of bytes, reset the client's
// connection, close it (truncating the stream), or half-close it (the
// client reads end-of-stream while its own writes still reach the daemon).
// The fault is read when a connection is accepted, so clearing it lets the
// next connection through untouched: a retry must then succeed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace envd::test {

class FaultProxy {
 public:
  enum class Fault { none, blackhole, delay, reset, truncate, half_close };

  struct Plan {
    Fault fault = Fault::none;
    std::size_t after_bytes = 0;  // reset / truncate / half_close: daemon bytes first let through
    std::chrono::milliseconds delay{0};  // delay: before each piece, both ways
  };

  // Listens on 127.0.0.1 (a free port) in front of upstream_host:upstream_port.
  FaultProxy(std::string upstream_host, int upstream_port);
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;
  // Closes every connection and joins every thread.
  ~FaultProxy();

  bool ok() const { return listen_fd_ >= 0; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void set(Plan plan);
  // Connections accepted so far.
  std::size_t accepted() const { return accepted_.load(); }

 private:
  void accept_loop();
  void serve(int client, Plan plan);

  std::string upstream_host_;
  int upstream_port_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: written once to stop every loop
  int port_ = 0;
  std::atomic<std::size_t> accepted_{0};
  std::mutex mutex_;
  Plan plan_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace envd::test
