#include "unix_builder.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <thread>
#include <utility>

#include "envd/address.hpp"

namespace envd::plugins {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kSubject = "unix builder address";
constexpr std::string_view kExpected =
    "an absolute socket path, e.g. /run/buildkit/buildkitd.sock or "
    "unix:///run/user/1000/buildkit/buildkitd.sock";

// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxPathBytes = sizeof(sockaddr_un::sun_path) - 1;

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

Error not_managed(std::string_view verb) {
  return Error(Errc::unsupported,
               "nothing to " + std::string(verb) +
                   ": it connects to a buildkitd that someone else runs (start the daemon "
                   "yourself, e.g. `buildkitd --addr "
                   "unix:///run/buildkit/buildkitd.sock` or `rootlesskit buildkitd`)");
}

// Closes an fd unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Why connect() failed, as the end of "cannot connect to buildkitd at
// unix:///x.sock: builder 'unix': <this>".
Error connect_error(int err, const std::string& path) {
  switch (err) {
    case ENOENT:
      return Error(
          Errc::unavailable,
          "the socket does not exist (is buildkitd running with --addr unix://" + path + "?)");
    case ECONNREFUSED: {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        return Error(Errc::unavailable, "'" + path + "' is not a socket");
      }
      return Error(Errc::unavailable,
                   "connection refused: nothing listens on the socket (a stopped buildkitd "
                   "leaves its socket behind)");
    }
    case EACCES:
    case EPERM:
      return Error(Errc::permission,
                   "permission denied for uid " + std::to_string(::getuid()) +
                       ": run envd as the daemon's user, or start buildkitd with --group so the "
                       "socket is group-accessible");
    case ENOTDIR:
      return Error(Errc::unavailable, "a component of '" + path + "' is not a directory");
    default:
      return Error(Errc::unavailable, std::string("connect failed: ") + std::strerror(err));
  }
}

// Connects a stream socket to `path` within `timeout`. Unix sockets connect
// at once or fail; EAGAIN means the listener's backlog is full, so we retry
// until the deadline instead of blocking in connect() without one.
Result<int> connect_socket(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() > kMaxPathBytes) {
    return Error(Errc::invalid_argument,
                 "the socket path is longer than " + std::to_string(kMaxPathBytes) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    FdGuard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) {
      return Error(Errc::internal, std::string("cannot create a socket: ") + std::strerror(errno));
    }
    int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      // Not expected for unix sockets, but honour the contract of connect().
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd.get(), POLLOUT, 0};
      int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
      socklen_t len = sizeof err;
      if (n <= 0) {
        err = ETIMEDOUT;
      } else if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
    }
    if (err == 0) {
      int flags = ::fcntl(fd.get(), F_GETFL);
      if (flags >= 0) (void)::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
      return fd.release();
    }
    if ((err != EAGAIN && err != ETIMEDOUT) || Clock::now() >= deadline) {
      if (err == EAGAIN || err == ETIMEDOUT) {
        return Error(Errc::timeout, "the daemon did not accept a connection within " +
                                        format_duration(timeout) + " (its backlog is full)");
      }
      return connect_error(err, path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

Result<std::string> UnixBuilder::normalize_address(const std::string& address) const {
  if (address.empty()) return std::string(default_socket);
  auto rest = sdk::strip_optional_scheme(address, "unix");
  if (!rest) return sdk::address_error(kSubject, address, rest.error().message(), kExpected);
  std::string path(*rest);
  auto invalid = [&](const std::string& why) {
    return sdk::address_error(kSubject, address, why, kExpected);
  };
  if (path.empty()) return invalid("the socket path is empty");
  if (path.front() != '/') return invalid("the socket path '" + path + "' is not absolute");
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return invalid("the socket path contains a control character");
  }
  // '?' and '#' would make unix:///path ambiguous as a URL, for buildkitd too.
  if (path.find_first_of("?#") != std::string::npos) {
    return invalid("'?' and '#' are not allowed in a socket path");
  }
  std::filesystem::path p(path);
  for (const auto& part : p) {
    if (part == "..") return invalid("'..' is not allowed in a socket path");
  }
  std::string normal = p.lexically_normal().string();
  if (normal.size() > 1 && normal.back() == '/') {
    return invalid("the socket path ends with '/' (it names a directory)");
  }
  if (normal == "/") return invalid("'/' is a directory, not a socket");
  if (normal.size() > kMaxPathBytes) {
    return invalid("the socket path is " + std::to_string(normal.size()) +
                   " bytes long; a unix socket path has at most " + std::to_string(kMaxPathBytes));
  }
  return normal;
}

// The transport is the connected fd rather than a gRPC "unix:" target: the
// driver sees the errno of connect() and reports a missing socket, a stale one,
// a non-socket and a permission problem each plainly and at once, where gRPC
// would retry them all until the deadline and report a generic UNAVAILABLE.
// Nothing is lost by not letting gRPC redial: a local daemon that goes away
// mid-build closes the socket, which the core reports at once either way.
Result<sdk::Transport> UnixBuilder::dial(const sdk::Request& request) {
  const std::string& path = request.address.empty() ? default_socket : request.address;
  auto fd = connect_socket(path, request.timeout);
  if (!fd) return fd.error();
  sdk::Transport transport;
  transport.kind = sdk::Transport::Kind::fd;
  transport.fd = *fd;
  transport.description = "unix://" + path;
  // The daemon's own socket, handed over whole: nothing of this module runs
  // after dial() returns.
  transport.self_contained = true;
  return transport;
}

// Only "running" or "unknown": a socket that does not answer is for the core
// to report, with dial's reason, as an unreachable builder (a failure), not as
// a managed daemon that is merely stopped.
Result<std::string> UnixBuilder::status(const sdk::Request& request) {
  const std::string& path = request.address.empty() ? default_socket : request.address;
  boost::json::object out;
  if (auto fd = connect_socket(path, request.timeout)) {
    ::close(*fd);
    out["state"] = "running";
    out["detail"] = "the socket accepts connections; envd does not manage this daemon";
  } else {
    out["state"] = "unknown";
    out["detail"] = "envd does not manage this daemon";
  }
  return boost::json::serialize(out);
}

Result<std::string> UnixBuilder::bootstrap(const sdk::Request& /*request*/) {
  return not_managed("bootstrap");
}
Status UnixBuilder::stop(const sdk::Request& /*request*/) { return not_managed("stop"); }
Status UnixBuilder::remove(const sdk::Request& /*request*/) { return not_managed("remove"); }

}  // namespace envd::plugins
