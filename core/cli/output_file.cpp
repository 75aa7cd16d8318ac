#include "cli/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <utility>

#include "util/atomic_file.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;

// The process's umask, read without setting it (umask(2) does both, and
// other threads create files meanwhile).
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Umask:", 0) == 0) {
      return static_cast<mode_t>(std::strtoul(line.c_str() + 6, nullptr, 8));
    }
  }
  return 022;
}

std::string directory_of(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

// "<path>.<6 random characters>.tmp" (util::temporary_template, whose X's
// are filled here: the file is named by linkat, not made by mkstemps).
std::string temporary_name(const std::string& path) {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device random;
  std::string name = util::temporary_template(path);
  auto tag = name.rfind("XXXXXX");
  for (std::size_t i = 0; i < 6; ++i) name[tag + i] = kAlphabet[random() % kAlphabet.size()];
  return name;
}

bool copy_all(int from, int to) {
  if (::lseek(from, 0, SEEK_SET) != 0) return false;
  std::array<char, 1 << 16> buffer{};
  for (;;) {
    ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    if (!util::write_all(to, std::string_view(buffer.data(), static_cast<std::size_t>(n)), "")) {
      return false;
    }
  }
}

}  // namespace

Status OutputFile::write(std::string_view chunk) {
  std::lock_guard lock(mu_);
  if (auto st = open_locked(); !st) return st;
  return util::write_all(fd_, chunk, "file " + path_);
}

Status OutputFile::commit() {
  std::lock_guard lock(mu_);
  if (auto st = open_locked(); !st) return st;
  if (in_place_) {
    if (::close(std::exchange(fd_, -1)) != 0) return fail("cannot write '" + path_ + "'", errno);
    ended_ = true;
    return {};
  }
  if (temp_.empty()) {
    // The unnamed file gets a name of its own first (linkat cannot replace
    // one), then the destination's by the rename.
    const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
    for (int attempt = 0;; ++attempt) {
      std::string name = temporary_name(path_);
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        temp_ = std::move(name);
        break;
      }
      if (errno != EEXIST || attempt == 10) return fail("cannot create '" + path_ + "'", errno);
    }
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    // A destination the rename cannot replace (a bind-mounted file: EBUSY)
    // gets the content copied in.
    int error = errno;
    int out = error == EBUSY || error == EPERM || error == EXDEV
                  ? ::open(path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC)
                  : -1;
    bool copied = out >= 0 && copy_all(fd_, out);
    if (out >= 0 && ::close(out) != 0) copied = false;
    if (!copied) return fail("cannot replace '" + path_ + "'", out >= 0 ? errno : error);
    ::unlink(temp_.c_str());
  }
  temp_.clear();
  if (::close(std::exchange(fd_, -1)) != 0) return fail("cannot write '" + path_ + "'", errno);
  ended_ = true;
  return {};
}

void OutputFile::abandon() {
  std::lock_guard lock(mu_);
  (void)fail("", 0);
}

Error OutputFile::fail(const std::string& what, int error) {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
  ended_ = true;
  return Error(Errc::internal, what + ": " + std::strerror(error));
}

Status OutputFile::open_in_place() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return fail("cannot create '" + path_ + "'", errno);
  in_place_ = true;
  return {};
}

Status OutputFile::open_locked() {
  if (fd_ >= 0) return {};
  if (ended_) return Error(Errc::internal, "the export to '" + path_ + "' has ended");
  struct stat existing {};
  const bool exists = ::lstat(path_.c_str(), &existing) == 0;
  if (exists && (!S_ISREG(existing.st_mode) || existing.st_nlink > 1 ||
                 (::geteuid() != 0 && existing.st_uid != ::geteuid()))) {
    return open_in_place();
  }
  const std::string dir = directory_of(path_);
  // Read and write: a destination the rename cannot replace is copied from it.
  fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    // A file system without unnamed files: a named temporary.
    std::string temp = temporary_name(path_);
    fd_ = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ >= 0) temp_ = std::move(temp);
  }
  if (fd_ < 0) {
    // A directory this user may not create files in, though the file may be
    // written: in place, as before.
    if (exists && (errno == EACCES || errno == EPERM || errno == EROFS)) return open_in_place();
    return fail("cannot create '" + path_ + "'", errno);
  }
  // The mode (and, for root, the owner) an earlier file had, else what
  // creating it would have given.
  const mode_t mode = exists ? existing.st_mode & 07777 : 0644 & ~current_umask();
  if (exists && ::geteuid() == 0) (void)::fchown(fd_, existing.st_uid, existing.st_gid);
  if (::fchmod(fd_, mode) != 0) return fail("cannot create '" + path_ + "'", errno);
  return {};
}

}  // namespace envd::cli
