#include "pty_session.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace envd::test {

std::unique_ptr<PtySession> PtySession::start(const std::vector<std::string>& argv,
                                              const std::map<std::string, std::string>& env,
                                              unsigned short rows, unsigned short columns) {
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> env_text;
  for (const auto& [key, value] : env) env_text.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : env_text) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& arg : args) argp.push_back(arg.data());
  argp.push_back(nullptr);

  winsize size{};
  size.ws_row = rows;
  size.ws_col = columns;
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  if (pid < 0) {
    ADD_FAILURE() << "forkpty: " << std::strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argp[0], argp.data(), envp.data());
    ::_exit(127);
  }
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<PtySession>(new PtySession(master, pid));
}

PtySession::~PtySession() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (master_ >= 0) ::close(master_);
}

void PtySession::type(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(master_, text.data() + done, text.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      read_some(std::chrono::milliseconds(10));  // make room: the child may be writing
    } else {
      ADD_FAILURE() << "cannot type into the terminal: " << std::strerror(errno);
      return;
    }
  }
}

bool PtySession::read_some(std::chrono::milliseconds wait) {
  if (closed_) return false;
  pollfd p{master_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(master_, buffer, sizeof buffer);
    if (n > 0) {
      output_.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    closed_ = true;  // EIO: every process holding the terminal has gone
    return false;
  }
}

bool PtySession::wait_for(const std::string& needle, std::chrono::milliseconds timeout,
                          std::size_t from) {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (output_.find(needle, from) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    if (!read_some(std::chrono::milliseconds(50))) {
      return output_.find(needle, from) != std::string::npos;
    }
  }
}

void PtySession::resize(unsigned short rows, unsigned short columns) {
  winsize size{};
  size.ws_row = rows;
  size.ws_col = columns;
  if (::ioctl(master_, TIOCSWINSZ, &size) != 0) {
    ADD_FAILURE() << "cannot resize the terminal: " << std::strerror(errno);
  }
}

std::optional<int> PtySession::wait_exit(std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    read_some(std::chrono::milliseconds(20));
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      while (read_some(std::chrono::milliseconds(0)) && !closed_) {
        pollfd p{master_, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) break;
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= end) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return std::nullopt;
    }
  }
}

}  // namespace envd::test
