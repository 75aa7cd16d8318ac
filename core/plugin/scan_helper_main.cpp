// envd-plugin-scan: describes one module file for the scanner (scanner.hpp),
// in a process of its own, so that a module that crashes, hangs, calls exit()
// or prints while it loads cannot harm envd.
//
//   envd-plugin-scan /absolute/path/to/module.so ENVD_PID
//
// Writes the module's facts (facts_to_json) as one JSON object to the stdout
// it was started with, then exits 0. The module never sees that stdout: fds
// 0 and 2 are /dev/null before it loads, and fd 1 an anonymous file, so that
// a module that prints to stdout as it loads (which would corrupt envd's
// --format json once loaded for use) is seen and refused. The helper dies
// with envd: a module that spins would otherwise outlive an envd killed by a
// signal sent to it alone. Installed in libexec/envd/, not for running by
// hand.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "plugin/descriptor.hpp"
#include "plugin/module_loader.hpp"

namespace {

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

}  // namespace

int main(int argc, char** argv) {
  char* end = nullptr;
  const long envd_pid = argc == 3 ? std::strtol(argv[2], &end, 10) : 0;
  if (argc != 3 || argv[1][0] != '/' || envd_pid <= 0 || end == argv[2] || *end != '\0') {
    std::fputs(
        "usage: envd-plugin-scan /absolute/path/to/module.so ENVD_PID (envd runs this itself)\n",
        stderr);
    return 2;
  }
  // The answer's channel: a copy of stdout that a module cannot write to by
  // accident, and that a program it execs does not inherit.
  int answer = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (answer < 0) return 126;
  // Ends with envd, however envd ends; if envd is gone already, at once.
  // envd names itself: reading getppid() first would take the process that
  // adopted this one, after an envd killed before prctl, for envd.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != static_cast<pid_t>(envd_pid)) _exit(124);

  // A crash must end the process with its signal, not in a handler or ignored.
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) {
    std::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    for (int fd = 0; fd <= 2; ++fd) ::dup2(null_fd, fd);
    if (null_fd > 2) ::close(null_fd);
  }
  // What the module prints to stdout lands here, to be measured.
  if (int printed = ::memfd_create("envd-plugin-scan-stdout", MFD_CLOEXEC); printed >= 0) {
    ::dup2(printed, STDOUT_FILENO);
    ::close(printed);
  }

  // A module that calls exit() ends the scan with its status at once, without
  // this program's exit handlers and static destructors. Registered last,
  // this handler runs first.
  ::on_exit([](int status, void*) { _exit(status); }, nullptr);

  std::string text;
  try {
    const std::filesystem::path path(argv[1]);
    auto loaded = envd::plugin::load_module(path);
    envd::plugin::ModuleInfo info;
    if (loaded) {
      info = envd::plugin::describe_descriptor(*loaded);
      std::fflush(stdout);
      struct stat printed {};
      if (info.ok && ::fstat(STDOUT_FILENO, &printed) == 0 && S_ISREG(printed.st_mode) &&
          printed.st_size > 0) {
        info.ok = false;
        info.reason = "it writes to stdout as it loads (" + std::to_string(printed.st_size) +
                      " bytes), which would corrupt envd's output";
      }
    } else {
      info.reason = loaded.error().message();
    }
    text = boost::json::serialize(envd::plugin::facts_to_json(info));
  } catch (...) {
    _exit(125);
  }
  write_all(answer, text);
  _exit(0);
}
