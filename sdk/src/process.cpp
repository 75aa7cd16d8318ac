#include "envd/process.hpp"

#include "envd/host.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

namespace envd::sdk {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
constexpr size_t kChunk = size_t{64} * 1024;

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);  // never retried: Linux releases the fd even on EINTR
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Error(Errc::internal, "cannot create a pipe: " + errno_text(errno));
  }
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Writes to a pipe whose reader may be gone without raising SIGPIPE in this
// process: SIGPIPE is blocked for this thread and a pending one we caused is
// consumed before the mask is restored.
ssize_t write_without_sigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  ssize_t n;
  do {
    n = ::write(fd, data, size);
  } while (n < 0 && errno == EINTR);
  int saved = errno;
  if (n < 0 && saved == EPIPE && !was_pending) {
    timespec zero{};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = saved;
  return n;
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The PATH the child will see, which is where execvp would look.
std::string child_path(const ProcessOptions& options) {
  if (auto it = options.env.find("PATH"); it != options.env.end()) {
    return it->second ? *it->second : kDefaultPath;
  }
  const char* inherited =
      options.clear_env ? nullptr : ::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
  return inherited != nullptr ? inherited : kDefaultPath;
}

Result<std::string> find_executable(const ProcessOptions& options) {
  const std::string& name = options.argv.front();
  if (name.find('/') != std::string::npos) {
    struct stat st {};
    if (::stat(name.c_str(), &st) != 0) {
      return Error(Errc::not_found, "cannot run '" + name + "': " + errno_text(errno));
    }
    if (!is_executable_file(name)) {
      return Error(Errc::permission, "cannot run '" + name + "': not an executable file");
    }
    return name;
  }
  std::string path = child_path(options);
  size_t start = 0;
  bool seen_non_executable = false;
  while (true) {
    size_t colon = path.find(':', start);
    std::string dir = path.substr(start, colon == std::string::npos ? colon : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    seen_non_executable = seen_non_executable || ::access(candidate.c_str(), F_OK) == 0;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (seen_non_executable) {
    return Error(Errc::permission,
                 "cannot run '" + name + "': found on PATH but not an executable file");
  }
  return Error(Errc::not_found, "cannot run '" + name + "': not found on PATH");
}

Result<std::vector<std::string>> child_environment(const ProcessOptions& options) {
  std::vector<std::string> env;
  if (!options.clear_env) {
    for (char** entry = environ; *entry != nullptr; ++entry) env.emplace_back(*entry);
  }
  for (const auto& [key, value] : options.env) {
    if (key.empty() || key.find('=') != std::string::npos) {
      return Error(Errc::invalid_argument, "environment variable name '" + key +
                                               "' is invalid for '" + options.argv.front() + "'");
    }
    std::erase_if(env, [&key = key](const std::string& entry) {
      return entry.size() > key.size() && entry[key.size()] == '=' && entry.starts_with(key);
    });
    if (value) env.push_back(key + "=" + *value);
  }
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_{};
};

class SpawnAttributes {
 public:
  SpawnAttributes() { posix_spawnattr_init(&attr_); }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attr_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_{};
};

// Starts argv with the child's fds 0-2 taken from `given` (-1: /dev/null).
Result<pid_t> spawn_child(const ProcessOptions& options, const std::array<int, 3>& given) {
  if (options.argv.empty() || options.argv.front().empty()) {
    return Error(Errc::invalid_argument, "cannot run a process without a command (argv is empty)");
  }
  const std::string& name = options.argv.front();
  // Copies above 2 make the dup2 actions independent of each other's order
  // (stdout passed as stdin, 1 and 2 swapped, or a pipe that got fd 0 because
  // this process closed its stdin).
  std::array<Fd, 3> copies;
  std::array<int, 3> child_fds{-1, -1, -1};
  for (size_t i = 0; i < 3; ++i) {
    if (given[i] < 0) continue;
    copies[i].reset(::fcntl(given[i], F_DUPFD_CLOEXEC, 3));
    if (!copies[i].open()) {
      return Error(Errc::invalid_argument, "cannot pass descriptor " + std::to_string(given[i]) +
                                               " to '" + name + "': " + errno_text(errno));
    }
    child_fds[i] = copies[i].get();
  }
  if (!options.cwd.empty()) {
    struct stat st {};
    if (::stat(options.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error(Errc::not_found, "cannot run '" + name + "': working directory '" + options.cwd +
                                        "' does not exist");
    }
  }
  auto executable = find_executable(options);
  if (!executable) return executable.error();
  auto env = child_environment(options);
  if (!env) return env.error();

  // /dev/null for the streams not given, opened here: opened by the spawn, a
  // missing /dev (a chroot, a bare container) failed the spawn with ENOENT,
  // which read as the program itself being missing.
  Fd null_device;
  if (std::find(child_fds.begin(), child_fds.end(), -1) != child_fds.end()) {
    Fd opened(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (opened.open()) null_device.reset(::fcntl(opened.get(), F_DUPFD_CLOEXEC, 3));
    if (!null_device.open()) {
      return Error(Errc::internal, "cannot run '" + name +
                                       "': cannot open /dev/null for the streams it is not "
                                       "given: " +
                                       errno_text(errno) + " (is /dev mounted?)");
    }
  }
  SpawnActions actions;
  for (int target = 0; target < 3; ++target) {
    const int from = child_fds[target] < 0 ? null_device.get() : child_fds[target];
    int rc = posix_spawn_file_actions_adddup2(actions.get(), from, target);
    if (rc != 0) return Error(Errc::internal, "cannot run '" + name + "': " + errno_text(rc));
  }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Belt and braces: a library may have opened a descriptor without O_CLOEXEC.
  posix_spawn_file_actions_addclosefrom_np(actions.get(), 3);
#endif
  if (!options.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(actions.get(), options.cwd.c_str());
  }

  SpawnAttributes attributes;
  sigset_t empty;
  sigemptyset(&empty);
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  posix_spawnattr_setsigmask(attributes.get(), &empty);
  posix_spawnattr_setsigdefault(attributes.get(), &pipe_only);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_process_group) {
    posix_spawnattr_setpgroup(attributes.get(), 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(attributes.get(), flags);

  std::vector<std::string> argv = options.argv;
  auto argv_c = c_strings(argv);
  auto env_c = c_strings(*env);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, executable->c_str(), actions.get(), attributes.get(), argv_c.data(),
                       env_c.data());
  if (rc != 0) {
    Errc code = rc == ENOENT                    ? Errc::not_found
                : (rc == EACCES || rc == EPERM) ? Errc::permission
                                                : Errc::internal;
    return Error(code, "cannot run '" + name + "': " + errno_text(rc));
  }
  return pid;
}

struct ExitStatus {
  int exit_code = -1;
  int term_signal = 0;
  bool timed_out = false;
};

ExitStatus decode(int status) {
  ExitStatus result;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  return result;
}

Result<int> wait_blocking(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno == EINTR) continue;
    if (errno == ECHILD) {
      return Error(Errc::not_found, "process " + std::to_string(pid) + " is not a child of envd");
    }
    return Error(Errc::internal,
                 "cannot wait for process " + std::to_string(pid) + ": " + errno_text(errno));
  }
  return status;
}

// Reaps the child, killing it with SIGKILL if it is still running at `deadline`.
Result<ExitStatus> reap(pid_t pid, std::optional<Clock::time_point> deadline) {
  if (!deadline) {
    auto status = wait_blocking(pid);
    if (!status) return status.error();
    return decode(*status);
  }
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return decode(status);
    if (done < 0 && errno != EINTR) {
      return Error(Errc::internal,
                   "cannot wait for process " + std::to_string(pid) + ": " + errno_text(errno));
    }
    auto now = Clock::now();
    if (now >= *deadline) {
      ::kill(pid, SIGKILL);
      auto killed = wait_blocking(pid);
      if (!killed) return killed.error();
      ExitStatus result = decode(*killed);
      result.timed_out = true;
      return result;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, *deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

// Reads what is available; closes `fd` at end of file or on an error.
void read_some(Fd& fd, std::string& sink) {
  char buffer[kChunk];
  ssize_t n;
  do {
    n = ::read(fd.get(), buffer, sizeof buffer);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    sink.append(buffer, static_cast<size_t>(n));
  } else if (n == 0 || errno != EAGAIN) {
    fd.reset();
  }
}

// After a kill: takes what the pipes already hold without waiting for EOF,
// which a grandchild holding the pipe open could postpone forever.
void drain(Fd& fd, std::string& sink) {
  if (!fd.open()) return;
  set_nonblocking(fd.get());
  while (fd.open()) {
    size_t before = sink.size();
    read_some(fd, sink);
    if (sink.size() == before) break;
  }
  fd.reset();
}

}  // namespace

Result<ProcessResult> run_process(const ProcessOptions& options) {
  auto out_pipe = make_pipe();
  if (!out_pipe) return out_pipe.error();
  auto err_pipe = make_pipe();
  if (!err_pipe) return err_pipe.error();
  Pipe in_pipe;
  if (!options.stdin_data.empty()) {
    auto made = make_pipe();
    if (!made) return made.error();
    in_pipe = std::move(*made);
  }

  auto pid =
      spawn_child(options, {in_pipe.read.get(), out_pipe->write.get(), err_pipe->write.get()});
  if (!pid) return pid.error();
  in_pipe.read.reset();
  out_pipe->write.reset();
  err_pipe->write.reset();

  Fd& in = in_pipe.write;
  Fd& out = out_pipe->read;
  Fd& err = err_pipe->read;
  if (in.open()) set_nonblocking(in.get());

  std::optional<Clock::time_point> deadline;
  if (options.timeout.count() > 0) deadline = Clock::now() + options.timeout;

  ProcessResult result;
  size_t written = 0;
  bool deadline_passed = false;
  while (in.open() || out.open() || err.open()) {
    std::array<pollfd, 3> fds{};
    nfds_t count = 0;
    if (out.open()) fds[count++] = {out.get(), POLLIN, 0};
    if (err.open()) fds[count++] = {err.get(), POLLIN, 0};
    if (in.open()) fds[count++] = {in.get(), POLLOUT, 0};

    // Wakes at least every 100 ms for the host's cancellation (Ctrl-C).
    int wait_ms = 100;
    if (deadline) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) {
        deadline_passed = true;
        break;
      }
      wait_ms = static_cast<int>(std::min<int64_t>(left.count(), wait_ms));
    }
    if (cancelled()) {
      ::kill(*pid, SIGKILL);
      (void)reap(*pid, std::nullopt);
      return cancelled_error("'" + options.argv.front() + "'");
    }
    int ready = ::poll(fds.data(), count, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::kill(*pid, SIGKILL);
      (void)reap(*pid, std::nullopt);
      return Error(Errc::internal,
                   "cannot watch '" + options.argv.front() + "': " + errno_text(saved));
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == out.get()) {
        read_some(out, result.out);
      } else if (fds[i].fd == err.get()) {
        read_some(err, result.err);
      } else if ((fds[i].revents & (POLLERR | POLLHUP)) != 0) {
        in.reset();  // the child closed its stdin; it does not want the rest
      } else {
        size_t size = std::min(kChunk, options.stdin_data.size() - written);
        ssize_t n = write_without_sigpipe(in.get(), options.stdin_data.data() + written, size);
        if (n > 0) written += static_cast<size_t>(n);
        if ((n < 0 && errno != EAGAIN) || written == options.stdin_data.size()) in.reset();
      }
    }
    if (options.max_output > 0 &&
        (result.out.size() > options.max_output || result.err.size() > options.max_output)) {
      ::kill(options.new_process_group ? -*pid : *pid, SIGKILL);
      auto status = reap(*pid, std::nullopt);
      if (!status) return status.error();
      result.out.resize(std::min(result.out.size(), options.max_output));
      result.err.resize(std::min(result.err.size(), options.max_output));
      result.exit_code = status->exit_code;
      result.term_signal = status->term_signal;
      result.output_exceeded = true;
      return result;
    }
  }

  auto status = reap(*pid, deadline);
  if (!status) return status.error();
  if (deadline_passed) {
    in.reset();
    drain(out, result.out);
    drain(err, result.err);
  }
  result.exit_code = status->exit_code;
  result.term_signal = status->term_signal;
  result.timed_out = status->timed_out;
  return result;
}

Result<pid_t> spawn_process(const ProcessOptions& options, int stdin_fd, int stdout_fd,
                            int stderr_fd) {
  return spawn_child(options, {stdin_fd, stdout_fd, stderr_fd});
}

Result<int> wait_process(pid_t pid) {
  auto status = wait_blocking(pid);
  if (!status) return status.error();
  ExitStatus decoded = decode(*status);
  return decoded.term_signal != 0 ? 128 + decoded.term_signal : decoded.exit_code;
}

std::string format_command(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& word : argv) {
    if (!text.empty()) text += ' ';
    bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
             (c != '\0' && std::strchr("-_./:=@%+,", c) != nullptr);
    });
    if (plain) {
      text += word;
      continue;
    }
    text += '\'';
    for (char c : word) text += c == '\'' ? std::string("'\\''") : std::string(1, c);
    text += '\'';
  }
  return text;
}

}  // namespace envd::sdk
