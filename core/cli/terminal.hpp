// The user's terminal while a runner drives it (`envd attach`, `envd envs
// logs`): raw mode on request, restored on every way out, and the window size
// with a counter that SIGWINCH advances.
#pragma once

#include <signal.h>
#include <termios.h>

#include <cstdint>

#include "plugin/module_handles.hpp"

namespace envd::cli {

class TerminalLease {
 public:
  // Lends stdin, stdout and stderr. They count as a terminal when both stdin
  // and stdout are one.
  TerminalLease();
  TerminalLease(const TerminalLease&) = delete;
  TerminalLease& operator=(const TerminalLease&) = delete;
  // Restores the terminal's modes (if make_raw changed them) and SIGWINCH's
  // previous disposition.
  ~TerminalLease();

  bool is_terminal() const { return is_terminal_; }

  // What a runner's logs or attach gets; valid while this lease lives.
  plugin::RunnerStdio stdio();

 private:
  void make_raw();
  std::uint32_t window_size(std::uint16_t& rows, std::uint16_t& columns) const;

  bool is_terminal_ = false;
  bool raw_ = false;
  bool winch_installed_ = false;
  termios saved_{};
  struct ::sigaction old_winch_ {};
};

}  // namespace envd::cli
