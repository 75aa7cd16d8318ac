// Running child processes: the one process spawner of envd and its drivers.
//
// Built on posix_spawn (no fork of a possibly multi-threaded process), with the
// executable searched on PATH, every descriptor other than 0-2 closed in the
// child (all of envd's descriptors are O_CLOEXEC), optional environment changes,
// and a deadline after which the child is killed with SIGKILL.
//
// The executable is resolved before spawning, so a missing one is an
// Errc::not_found error ("cannot run 'x': not found on PATH"), never a child
// exiting 127. The search uses the child's PATH: options.env["PATH"] if set,
// else this process's PATH (none with clear_env), else "/usr/local/bin:/usr/bin:/bin".
// The child starts with an empty signal mask and SIGPIPE at its default action
// (other ignored signals stay ignored, as nohup expects).
// All functions retry on EINTR and may run in several threads at once, as long
// as no thread changes this process's environment meanwhile.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "envd/result.hpp"

namespace envd::sdk {

struct ProcessOptions {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH unless it has a '/'
  // Environment changes on top of this process's environment (or of an empty one
  // with clear_env): a value sets the variable, nullopt removes it.
  std::map<std::string, std::optional<std::string>> env;
  bool clear_env = false;
  std::string cwd;                       // empty: inherit
  std::string stdin_data;                // written to the child's stdin, which is then closed
  std::chrono::milliseconds timeout{0};  // 0: no deadline
  // The child leads a process group of its own (its pid is the group's id),
  // so kill(-pid, ...) reaches what it starts too: a wrapper script's
  // children, which would otherwise outlive it holding its pipes open.
  bool new_process_group = false;
  // The most run_process keeps of stdout, and of stderr (0: no bound). A child
  // that writes more is killed with SIGKILL and output_exceeded set: a
  // misbehaving helper cannot make its caller hold gigabytes.
  size_t max_output = 0;
};

struct ProcessResult {
  int exit_code = -1;      // valid when the child exited (term_signal == 0)
  int term_signal = 0;     // the signal that ended the child, 0 if it exited
  bool timed_out = false;  // the deadline passed and the child was killed
  // The child wrote more than max_output to stdout or stderr and was killed;
  // out and err hold what came before, up to max_output each.
  bool output_exceeded = false;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr

  bool succeeded() const {
    return term_signal == 0 && !timed_out && !output_exceeded && exit_code == 0;
  }
};

// Runs a process to completion, capturing stdout and stderr. Fails only if the
// process cannot be started (Errc::not_found for a missing executable or
// working directory, Errc::permission for one that is not executable,
// Errc::invalid_argument for an empty argv); a non-zero exit is reported in the
// result. Without stdin_data the child's stdin is /dev/null. If the child
// closes stdin early, the rest of stdin_data is dropped (no SIGPIPE).
Result<ProcessResult> run_process(const ProcessOptions& options);

// Starts a process whose stdin, stdout and stderr are the given descriptors
// (-1 means /dev/null), for callers that stream through pipes or sockets. The
// descriptors are duplicated into the child; the caller keeps its own. The
// caller must reap the child with wait_process(). stdin_data and timeout are
// ignored.
Result<pid_t> spawn_process(const ProcessOptions& options, int stdin_fd, int stdout_fd,
                            int stderr_fd);

// Waits for a child started by spawn_process; returns its exit code, or
// 128 + signal number if it was killed.
Result<int> wait_process(pid_t pid);

// Renders argv for messages: words with spaces or quotes are single-quoted
// (so are empty words and any with other characters a POSIX shell treats
// specially), so the text can be pasted into a shell.
std::string format_command(const std::vector<std::string>& argv);

}  // namespace envd::sdk
