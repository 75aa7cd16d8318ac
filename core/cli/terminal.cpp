#include "cli/terminal.hpp"
#include "util/data_out.hpp"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>

namespace envd::cli {
namespace {

// Advanced by the SIGWINCH handler: a lock-free atomic is async-signal-safe.
std::atomic<std::uint32_t> g_window_changes{1};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

extern "C" void on_window_change(int /*signal*/) {
  g_window_changes.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

TerminalLease::TerminalLease()
    : is_terminal_(::isatty(STDIN_FILENO) == 1 && ::isatty(util::data_fd()) == 1) {
  if (!is_terminal_) return;
  struct ::sigaction action {};
  action.sa_handler = on_window_change;
  sigemptyset(&action.sa_mask);
  // Restarted system calls: a resize must not fail a read or write elsewhere.
  action.sa_flags = SA_RESTART;
  winch_installed_ = ::sigaction(SIGWINCH, &action, &old_winch_) == 0;
}

TerminalLease::~TerminalLease() {
  if (raw_) {
    // TCSAFLUSH would drop what the user typed after the session ended.
    ::tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_);
  }
  if (winch_installed_) ::sigaction(SIGWINCH, &old_winch_, nullptr);
}

void TerminalLease::make_raw() {
  if (!is_terminal_ || raw_) return;
  if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
  termios raw = saved_;
  ::cfmakeraw(&raw);
  // Output post-processing stays off too (cfmakeraw clears OPOST): the
  // remote terminal already sends "\r\n".
  if (::tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0) raw_ = true;
}

std::uint32_t TerminalLease::window_size(std::uint16_t& rows, std::uint16_t& columns) const {
  // Read the counter first: a resize between the two reads is then seen again
  // on the next poll rather than lost.
  std::uint32_t generation = g_window_changes.load(std::memory_order_relaxed);
  winsize size{};
  if (!is_terminal_ || ::ioctl(util::data_fd(), TIOCGWINSZ, &size) != 0) {
    rows = 0;
    columns = 0;
    return generation;
  }
  rows = size.ws_row;
  columns = size.ws_col;
  return generation;
}

plugin::RunnerStdio TerminalLease::stdio() {
  plugin::RunnerStdio io;
  io.in_fd = STDIN_FILENO;
  io.out_fd = util::data_fd();
  io.err_fd = STDERR_FILENO;
  io.is_terminal = is_terminal_;
  io.make_raw = [this] { make_raw(); };
  io.window_size = [this](std::uint16_t& rows, std::uint16_t& columns) {
    return window_size(rows, columns);
  };
  return io;
}

}  // namespace envd::cli
