#include "plugin/scanner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "plugin/descriptor.hpp"
#include "plugin/module_loader.hpp"
#include "util/json.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

ModuleInfo refused(std::string reason) {
  ModuleInfo info;
  info.reason = std::move(reason);
  return info;
}

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// The child: describe the module, write the facts, never return.
[[noreturn]] void run_child(const fs::path& path, int out_fd) {
  // A crash must end the child with its signal, not in a handler it inherited.
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) {
    std::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    for (int fd = 0; fd <= 2; ++fd) ::dup2(null_fd, fd);
    if (null_fd > 2) ::close(null_fd);
  }

  // A module that calls exit() must not run envd's exit handlers and static
  // destructors in this copy of envd (they could remove files, flush buffers
  // twice...). Registered last, this handler runs first and ends the process.
  ::on_exit([](int status, void*) { _exit(status); }, nullptr);

  std::string text;
  try {
    auto loaded = load_module(path);
    ModuleInfo info = loaded ? describe_descriptor(*loaded) : refused(loaded.error().message());
    text = json::serialize(facts_to_json(info));
  } catch (...) {
    _exit(125);
  }
  write_all(out_fd, text);
  _exit(0);
}

// Reads the child's answer until EOF or the deadline. Returns false on timeout.
bool read_answer(int fd, Clock::time_point deadline, std::string& out) {
  char buf[4096];
  for (;;) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(remaining.count()) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return true;  // treat as EOF; the exit status decides
    if (r == 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Waits for the child until the deadline; returns false if it is still running.
bool wait_child(pid_t pid, Clock::time_point deadline, int& status) {
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) {
      status = 0;  // already reaped (SIGCHLD ignored): judge by the answer alone
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace

ModuleInfo scan_module(const fs::path& path, std::chrono::milliseconds timeout) {
  // Files that cannot be ELF are refused without starting anything.
  if (auto st = check_elf_header(path); !st) return refused(st.error().message());

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return refused(std::string("cannot be scanned: pipe failed: ") + std::strerror(errno));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return refused(std::string("cannot be scanned: fork failed: ") + std::strerror(err));
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_child(path, fds[1]);
  }
  ::close(fds[1]);

  const auto deadline = Clock::now() + timeout;
  std::string answer;
  bool answered = read_answer(fds[0], deadline, answer);
  ::close(fds[0]);
  int status = 0;
  if (!answered || !wait_child(pid, deadline, status)) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return refused("timed out while loading (killed after " + duration_text(timeout) + ")");
  }
  if (WIFSIGNALED(status)) {
    return refused("crashed while loading (signal " + std::to_string(WTERMSIG(status)) + ")");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    return refused("exited with status " + std::to_string(WEXITSTATUS(status)) + " while loading");
  }
  if (answer.empty()) return refused("exited while loading without describing itself");
  auto parsed = util::parse_json(answer, "scan result");
  if (parsed && parsed->is_object()) {
    if (auto facts = facts_from_json(parsed->get_object())) return *facts;
  }
  return refused("cannot be scanned: the scanning process sent an unreadable answer");
}

}  // namespace envd::plugin
