// A process on a real pseudo-terminal, driven as a user at a terminal would:
// type, read the screen's bytes, resize the window (the kernel then sends
// SIGWINCH to the terminal's foreground process group), and collect the exit
// status. For `envd attach` and `envd up`, whose terminal handling (raw mode,
// window size, exit codes) only shows on a terminal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace envd::test {

class PtySession {
 public:
  // Runs argv[0] (a path) with exactly `env` on a new terminal of the given
  // size, as the leader of its own session. nullptr (with a test failure
  // added) if the terminal or the process cannot be made.
  static std::unique_ptr<PtySession> start(const std::vector<std::string>& argv,
                                           const std::map<std::string, std::string>& env,
                                           unsigned short rows, unsigned short columns);
  PtySession(const PtySession&) = delete;
  PtySession& operator=(const PtySession&) = delete;
  // Kills the process if it still runs.
  ~PtySession();

  // Sends keystrokes.
  void type(const std::string& text);

  // Reads until `needle` has appeared after offset `from` of everything read
  // so far, the process ends, or `timeout`; true if it appeared.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout, std::size_t from = 0);

  // Sets a new window size.
  void resize(unsigned short rows, unsigned short columns);

  // Reads to the end and waits for the process; its exit code (128 + signal
  // if killed), or nullopt after `timeout` (the process is then killed).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  // Everything the process wrote to the terminal so far.
  const std::string& output() const { return output_; }

 private:
  PtySession(int master, pid_t pid) : master_(master), pid_(pid) {}
  // Reads what is available within `wait`; false once the terminal is closed.
  bool read_some(std::chrono::milliseconds wait);

  int master_;
  pid_t pid_;
  std::string output_;
  bool closed_ = false;
};

}  // namespace envd::test
