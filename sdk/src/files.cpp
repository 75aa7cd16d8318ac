#include "envd/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace envd::sdk {
namespace {

std::string quoted(const std::string& path) { return "'" + path + "'"; }

Error errno_error(const std::string& path, int err) {
  Errc code = err == ENOENT || err == ENOTDIR ? Errc::not_found
              : err == EACCES || err == EPERM ? Errc::permission
                                              : Errc::internal;
  return Error(code, "cannot read " + quoted(path) + ": " + std::strerror(err));
}

}  // namespace

Result<std::string> read_regular_file(const std::string& path, std::size_t limit) {
  // O_NONBLOCK only so that opening a FIFO returns; regular files ignore it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno_error(path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return errno_error(path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error(Errc::unsupported,
                 quoted(path) + " is " + file_kind(st.st_mode) + ", not a regular file");
  }
  if (static_cast<unsigned long long>(st.st_size) > limit) {
    ::close(fd);
    return Error(Errc::invalid_argument,
                 quoted(path) + " is larger than " + std::to_string(limit) + " bytes");
  }
  // Reads block again: a file on a slow disk is read whole.
  if (int flags = ::fcntl(fd, F_GETFL); flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return errno_error(path, err);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > limit) {
      ::close(fd);
      return Error(Errc::invalid_argument,
                   quoted(path) + " is larger than " + std::to_string(limit) + " bytes");
    }
  }
  ::close(fd);
  return text;
}

}  // namespace envd::sdk
