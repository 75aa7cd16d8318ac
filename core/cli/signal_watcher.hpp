// Ctrl-C, SIGTERM and SIGHUP (the terminal went away) for commands whose
// work runs on other threads (gRPC's, a driver's): collected by one watcher
// thread instead of killing envd, so the command cleans up after itself.
#pragma once

#include <signal.h>

#include <functional>
#include <thread>

namespace envd::cli {

// Ctrl-C, SIGTERM and SIGHUP call `on_signal` (on the watcher's thread),
// unless the signal is ignored (`nohup envd build` keeps running): the signals
// are blocked in every thread created after construction and collected by one
// watcher thread, so gRPC's threads never see them. Construct it before the
// first gRPC call.
//
// The command then has 10 s to stop; a second signal, or a command still
// running after that, ends the process at once (_exit, status 128 + the
// first signal) with one line saying so, since envd would otherwise stay
// deaf to the user behind a driver that ignores cancellation.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void()> on_signal);
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;
  ~SignalWatcher();

  // The first signal any watcher collected in this process (SIGINT, SIGTERM
  // or SIGHUP), 0 if none: a cancelled command exits 128 + it, as a shell
  // reports a process that signal ended.
  static int received();

 private:
  std::function<void()> on_signal_;
  sigset_t set_{};
  sigset_t old_{};
  int signal_fd_ = -1;  // SIGINT, SIGTERM and SIGHUP, blocked and read here
  int stop_fd_ = -1;    // eventfd: the command is over
  std::thread thread_;
};

}  // namespace envd::cli
