#include "ssh_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <thread>
#include <utility>

#include "envd/process.hpp"
#include "envd/relay.hpp"

namespace envd::sdk::engine {

Status SshProcess::watch(pid_t pid, int stderr_fd) {
  auto self = shared_from_this();
  auto relay = Relay::run(
      "ssh stderr watcher", [self, pid, stderr_fd] { self->collect(pid, stderr_fd); },
      [self] { self->stopping_ = true; }, {stderr_fd});
  if (!relay) {
    ::kill(pid, SIGKILL);
    (void)wait_process(pid);
    return relay.error();
  }
  relay_registry().adopt(std::move(*relay));
  return {};
}

void SshProcess::collect(pid_t pid, int stderr_fd) {
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(stderr_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mutex_);
    if (err_.size() < 16384) err_.append(buf, static_cast<std::size_t>(n));
  }
  auto code = reap(pid);
  std::lock_guard lock(mutex_);
  exit_code_ = code ? *code : -1;
  done_ = true;
  ended_.notify_all();
}

// ssh closes its stderr when it ends, so this rarely waits; but once the watch
// was stopped, an ssh still running is killed rather than waited for.
Result<int> SshProcess::reap(pid_t pid) {
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    siginfo_t info{};
    // WNOWAIT: only looks; wait_process() below reaps and decodes.
    int rc = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || info.si_pid == pid) break;
    if (stopping_) {
      ::kill(pid, SIGKILL);
      break;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  return wait_process(pid);
}

std::string SshProcess::why(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  if (!ended_.wait_for(lock, wait, [&] { return done_; })) return "";
  std::string text = err_;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (auto nl = text.rfind('\n'); nl != std::string::npos) text.erase(0, nl + 1);
  if (!text.empty()) return text;
  return "ssh exited with " + std::to_string(exit_code_);
}

}  // namespace envd::sdk::engine
