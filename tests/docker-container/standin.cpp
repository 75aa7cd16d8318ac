// A test-only stand-in for the moby/buildkit image's two programs, which
// cannot be pulled here. One static binary, installed as both names:
//
//   buildctl dial-stdio      connects the Docker Engine socket mounted into the
//                            container ($STANDIN_ENGINE_SOCKET, default
//                            /run/envd-test/docker.sock), upgrades POST /grpc to
//                            h2c, and copies stdin to the engine and the
//                            engine to stdout: the engine's embedded BuildKit
//                            then answers as buildkitd would.
//                            With $STANDIN_DIAL_CLOSE set it exits after
//                            300 ms without forwarding anything.
//   buildctl debug workers   the same upgrade as a readiness probe; prints the
//                            embedded BuildKit's single worker.
//   buildkitd ARGS...        logs its arguments and the --config file it was
//                            given, then sleeps until SIGTERM. With
//                            $STANDIN_EXIT_CODE set it logs a line and exits
//                            with that code instead (a failing entrypoint).
//
// Uses libc and libstdc++ only, so it links statically into a busybox image.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "buildctl (envd test stand-in): %s\n", message.c_str());
  return 1;
}

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Connects the engine and upgrades POST /grpc; returns the socket or -1 with
// the reason in `error`.
int connect_grpc(std::string& error) {
  const char* env = std::getenv("STANDIN_ENGINE_SOCKET");
  std::string path = env != nullptr && env[0] != '\0' ? env : "/run/envd-test/docker.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "cannot connect to buildkitd: dial unix " + path + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  const std::string request =
      "POST /v1.41/grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
      "Content-Length: 0\r\n\r\n";
  if (!write_all(fd, request.data(), request.size())) {
    error = "cannot send the upgrade request";
    ::close(fd);
    return -1;
  }
  // Byte by byte, so nothing after the response head is consumed.
  std::string head;
  char c = 0;
  while (head.size() < 8192 && head.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::read(fd, &c, 1);
    if (n <= 0) break;
    head += c;
  }
  if (head.compare(0, 12, "HTTP/1.1 101") != 0) {
    error = "the engine refused the h2c upgrade: " + head.substr(0, head.find("\r\n"));
    ::close(fd);
    return -1;
  }
  return fd;
}

int dial_stdio() {
  if (const char* close = std::getenv("STANDIN_DIAL_CLOSE"); close != nullptr && close[0] != '\0') {
    // Lives long enough to pass for started, then ends without a byte of gRPC.
    ::usleep(300 * 1000);
    return fail("closing on purpose (STANDIN_DIAL_CLOSE)");
  }
  std::string error;
  int fd = connect_grpc(error);
  if (fd < 0) return fail(error);
  pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {fd, POLLIN, 0}};
  bool stdin_open = true;
  char buf[65536];
  for (;;) {
    fds[0].fd = stdin_open ? STDIN_FILENO : -1;
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return fail(std::string("poll: ") + std::strerror(errno));
    }
    if (stdin_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        stdin_open = false;
        ::shutdown(fd, SHUT_WR);
      } else if (!write_all(fd, buf, static_cast<size_t>(n))) {
        return 0;
      }
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0 || !write_all(STDOUT_FILENO, buf, static_cast<size_t>(n))) return 0;
    }
  }
}

int debug_workers() {
  std::string error;
  int fd = connect_grpc(error);
  if (fd < 0) return fail(error);
  ::close(fd);
  std::printf("ID\tPLATFORMS\nmoby\tlinux/amd64\n");
  return 0;
}

int buildkitd(int argc, char** argv) {
  std::string args;
  std::string config;
  for (int i = 1; i < argc; ++i) {
    args += std::string(i > 1 ? " " : "") + argv[i];
    if (std::string(argv[i]) == "--config" && i + 1 < argc) config = argv[i + 1];
  }
  std::printf("buildkitd (envd test stand-in) args: %s\n", args.c_str());
  if (!config.empty()) {
    std::ifstream in(config);
    std::stringstream text;
    text << in.rdbuf();
    std::printf("config %s%s:\n%s\n", config.c_str(), in ? "" : " (unreadable)",
                text.str().c_str());
  }
  if (const char* code = std::getenv("STANDIN_EXIT_CODE"); code != nullptr && code[0] != '\0') {
    std::printf("standin: failing on purpose with exit code %s\n", code);
    std::fflush(stdout);
    std::fprintf(stderr, "standin: fatal: configured to fail\n");
    return std::atoi(code);
  }
  std::fflush(stdout);
  // As PID 1 the default dispositions do nothing: wait for the signals explicitly.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("buildkitd (envd test stand-in) stopping on signal %d\n", sig);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string self = argv[0];
  self = self.substr(self.rfind('/') + 1);
  if (self == "buildkitd") return buildkitd(argc, argv);
  if (self == "buildctl") {
    std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "dial-stdio") return dial_stdio();
    if (cmd == "debug" && argc > 2 && std::string(argv[2]) == "workers") return debug_workers();
    return fail("unsupported command '" + cmd + "' (the stand-in knows dial-stdio, debug workers)");
  }
  std::fprintf(stderr, "standin: run me as buildctl or buildkitd, not %s\n", self.c_str());
  return 2;
}
