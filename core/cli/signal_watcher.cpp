#include "cli/signal_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <utility>

namespace envd::cli {
namespace {

std::atomic<int> first_signal{0};

}  // namespace

int SignalWatcher::received() { return first_signal.load(); }

SignalWatcher::SignalWatcher(std::function<void()> on_signal) : on_signal_(std::move(on_signal)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
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
    for (;;) {
      pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if ((fds[1].revents & POLLIN) != 0) return;
      signalfd_siginfo info{};
      if ((fds[0].revents & POLLIN) != 0 &&
          ::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        int none = 0;
        first_signal.compare_exchange_strong(none, static_cast<int>(info.ssi_signo));
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
