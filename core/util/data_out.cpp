#include "util/data_out.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace envd::util {
namespace {

// Set once by keep_data_apart(), from main() before any thread starts;
// cleared by put_data_back() just before an exec.
int apart_fd = -1;
std::FILE* apart_out = nullptr;

}  // namespace

void keep_data_apart() {
  if (apart_out != nullptr) return;
  std::fflush(stdout);
  // Above 2, so that a descriptor the user handed envd (`3<file`, named as
  // /dev/fd/3) keeps its number: F_DUPFD takes the lowest free one.
  const int fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return;  // data then shares descriptor 1, as before
  std::FILE* out = ::fdopen(fd, "w");
  if (out == nullptr) {
    ::close(fd);
    return;
  }
  if (::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    std::fclose(out);
    return;
  }
  // A module's stray lines go out as they are written, between envd's own
  // messages, rather than in one block at exit.
  std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
  apart_fd = fd;
  apart_out = out;
}

void put_data_back() {
  if (apart_out == nullptr) return;
  std::fflush(apart_out);
  std::fflush(stdout);
  if (::dup2(apart_fd, STDOUT_FILENO) < 0) return;  // nothing better to do: data stays apart
  std::fclose(apart_out);
  apart_out = nullptr;
  apart_fd = -1;
}

std::FILE* data_out() { return apart_out != nullptr ? apart_out : stdout; }

int data_fd() { return apart_fd >= 0 ? apart_fd : STDOUT_FILENO; }

}  // namespace envd::util
