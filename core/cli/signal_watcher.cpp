#include "cli/signal_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "plugin/call_in_flight.hpp"
#include "util/message_out.hpp"

namespace envd::cli {
namespace {

std::atomic<int> first_signal{0};

// After the first signal the command has this long to stop (a driver polls
// the host's cancellation every 100 ms and then undoes what it half did).
constexpr int kGraceMs = 10000;

// A command that did not stop (a driver that ignores cancellation, a call
// that never returns) would leave envd deaf to the user: it ends here, with
// the status the first signal stands for, and says why.
[[noreturn]] void end_now(const std::string& why) {
  util::write_message(stderr, "envd: error: " + why + "\n");
  const int signal = first_signal.load();
  ::_exit(128 + (signal != 0 ? signal : SIGINT));
}

}  // namespace

int SignalWatcher::received() { return first_signal.load(); }

SignalWatcher::SignalWatcher(std::function<void()> on_signal) : on_signal_(std::move(on_signal)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  // Ignored (nohup), SIGHUP is dropped before it could be read: the command
  // goes on, as the user asked.
  sigaddset(&set_, SIGHUP);
  // A signalfd and an eventfd let the watcher sleep until a signal arrives or
  // the command ends, so stopping it costs nothing (a polling tick would add
  // up to a tick to every build's wall time). Without either (the process is
  // out of descriptors), no watcher: Ctrl-C keeps its default effect.
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) return;
  pthread_sigmask(SIG_BLOCK, &set_, &old_);
  signal_fd_ = ::signalfd(-1, &set_, SFD_CLOEXEC);
  if (signal_fd_ < 0) {
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    return;
  }
  thread_ = std::thread([this] {
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> deadline;  // set by the first signal
    Clock::time_point first_at;
    std::uint32_t first_sender = 0;  // the process that sent it; 0 for the terminal
    for (;;) {
      pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      int wait_ms = -1;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            *deadline - std::chrono::steady_clock::now());
        wait_ms = static_cast<int>(std::max<std::int64_t>(left.count(), 0));
      }
      int ready = ::poll(fds, 2, wait_ms);
      if (ready < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if ((fds[1].revents & POLLIN) != 0) return;
      if (ready == 0) {
        // A driver module that ignores cancellation is the usual cause:
        // named, so that its author can be told.
        const std::string waiting = plugin::calls_in_flight();
        end_now("interrupted, but the command did not stop within 10 s" +
                (waiting.empty() ? std::string() : " (still waiting on " + waiting + ")") +
                "; ending envd without its clean-up");
      }
      signalfd_siginfo info{};
      if ((fds[0].revents & POLLIN) != 0 &&
          ::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (deadline) {
          // One stop sent twice by one process at once is one request:
          // timeout(1) signals its child and then the child's whole group,
          // so envd hears it twice within microseconds. The terminal's
          // Ctrl-C comes once per key press (sender 0), and another `kill`
          // is another process.
          const bool echo = info.ssi_pid != 0 && info.ssi_pid == first_sender &&
                            Clock::now() - first_at < std::chrono::seconds(1);
          if (echo) continue;
          end_now("interrupted again; ending envd without its clean-up");
        }
        int none = 0;
        first_signal.compare_exchange_strong(none, static_cast<int>(info.ssi_signo));
        first_at = Clock::now();
        first_sender = info.ssi_pid;
        deadline = first_at + std::chrono::milliseconds(kGraceMs);
        on_signal_();
      }
    }
  });
}

SignalWatcher::~SignalWatcher() {
  if (thread_.joinable()) {
    // An eventfd write fails only on a counter overflow, which one write per
    // watcher cannot reach; EINTR is retried.
    uint64_t one = 1;
    while (::write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  if (signal_fd_ >= 0) ::close(signal_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

}  // namespace envd::cli
