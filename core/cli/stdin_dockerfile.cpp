#include "cli/stdin_dockerfile.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include "util/terminal.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;

// Far above any hand-written Dockerfile; what is larger is a wrong pipe.
constexpr size_t kMaxDockerfileBytes = size_t{32} << 20;

// Whether `head` starts an archive or compressed stream, the inputs docker
// build - takes as a context: gzip, bzip2, xz, zstd, or a tar header.
bool looks_like_archive(std::string_view head) {
  auto starts = [&head](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  if (starts("\x1f\x8b") || starts("BZh") ||
      starts(std::string_view("\xfd"
                              "7zXZ\0",
                              6)) ||
      starts("\x28\xb5\x2f\xfd")) {
    return true;
  }
  // POSIX and GNU tar: "ustar" at offset 257 of the first header.
  return head.size() >= 262 && head.substr(257, 5) == "ustar";
}

}  // namespace

Result<std::string> read_stdin_dockerfile(int fd, std::string_view source) {
  const std::string from = "the Dockerfile on standard input (" + std::string(source) + ")";
  if (util::was_closed_at_start(fd)) {
    return Error(Errc::invalid_argument,
                 from + ": standard input is closed; pipe the Dockerfile in");
  }
  if (util::is_terminal(fd)) {
    return Error(Errc::invalid_argument,
                 from + ": standard input is a terminal; pipe the Dockerfile in (" +
                     std::string(source) + " < Dockerfile)");
  }
  std::string text;
  std::array<char, 65536> buffer{};
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error(Errc::internal, "cannot read " + from + ": " + std::strerror(errno));
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxDockerfileBytes) {
      return Error(Errc::invalid_argument, from + " is larger than 32 MiB; is it a Dockerfile?");
    }
    text.append(buffer.data(), static_cast<size_t>(n));
  }
  if (text.empty()) return Error(Errc::invalid_argument, from + " is empty");
  if (looks_like_archive(text)) {
    return Error(Errc::unsupported,
                 from +
                     " is an archive: envd builds a context directory, not a tarred one; "
                     "extract it and give its directory");
  }
  return text;
}

Result<StdinDockerfile> StdinDockerfile::read(std::string_view source) {
  auto text = read_stdin_dockerfile(STDIN_FILENO, source);
  if (!text) return text.error();
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = (tmp != nullptr && tmp[0] != '\0' ? std::string(tmp) : "/tmp");
  pattern += "/envd-stdin-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Error(Errc::internal,
                 "cannot make a directory for the Dockerfile on standard input in '" +
                     fs::path(pattern).parent_path().string() + "': " + std::strerror(errno));
  }
  // Owned from here: every failure below removes it.
  StdinDockerfile made{fs::path(pattern)};
  const fs::path file = made.dockerfile();
  auto failed = [&file](int error) {
    return Error(Errc::internal, "cannot write '" + file.string() + "': " + std::strerror(error));
  };
  if (::mkdir(file.parent_path().c_str(), 0700) != 0 ||
      ::mkdir(made.empty_context().c_str(), 0700) != 0) {
    return failed(errno);
  }
  int out = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) return failed(errno);
  size_t written = 0;
  while (written < text->size()) {
    ssize_t n = ::write(out, text->data() + written, text->size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(out);
      return failed(error);
    }
    written += static_cast<size_t>(n);
  }
  if (::close(out) != 0) return failed(errno);
  return made;
}

StdinDockerfile::~StdinDockerfile() {
  if (dir_.empty()) return;
  std::error_code ignored;  // a leftover in TMPDIR is all a failure leaves
  fs::remove_all(dir_, ignored);
}

}  // namespace envd::cli
