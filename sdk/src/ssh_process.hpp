// Private to the SDK: the ssh process behind an ssh:// connection to the
// Docker Engine (see engine_connection.hpp).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "envd/result.hpp"

namespace envd::sdk::engine {

// A relay thread (kept by relay_registry()) collects what ssh writes to
// stderr and reaps it when it ends (which, for a hijacked connection, is when
// the caller closes its fd and ssh reads EOF). Stopping that relay (at exit)
// ends the watch at once and kills an ssh still running.
class SshProcess : public std::enable_shared_from_this<SshProcess> {
 public:
  // Starts watching `pid`, whose stderr is the other end of the socket
  // `stderr_fd` (taken; a socket, so that a stop can wake the read). On
  // failure ssh is killed and reaped, and `stderr_fd` closed.
  Status watch(pid_t pid, int stderr_fd);

  // Why the connection ended: ssh's last stderr line, or its exit code; ""
  // if ssh is still running after `wait`.
  std::string why(std::chrono::milliseconds wait);

 private:
  void collect(pid_t pid, int stderr_fd);
  Result<int> reap(pid_t pid);

  std::atomic<bool> stopping_ = false;  // the watch was stopped
  std::mutex mutex_;
  std::condition_variable ended_;
  std::string err_;     // guarded by mutex_
  int exit_code_ = -1;  // guarded by mutex_
  bool done_ = false;   // guarded by mutex_
};

}  // namespace envd::sdk::engine
