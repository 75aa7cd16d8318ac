#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstring>
#include <thread>
#include <utility>

#include "envd/files.hpp"
#include "util/data_out.hpp"
#include "util/prefault.hpp"

namespace envd::util {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

Error errno_error(const std::string& what, const fs::path& path, int err) {
  Errc code = Errc::internal;
  if (err == EACCES || err == EPERM || err == EROFS) code = Errc::permission;
  if (err == ENOENT) code = Errc::not_found;
  return Error(code, "cannot " + what + " " + quoted(path) + ": " + std::strerror(err));
}

// "(mode 0444)".
std::string mode_text(mode_t mode) {
  std::string digits = "0000";
  for (int i = 3; i >= 0; --i, mode >>= 3)
    digits[static_cast<std::size_t>(i)] = static_cast<char>('0' + (mode & 7));
  return "(mode " + digits + ")";
}

// Closes an fd on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Best effort (see write_file_atomically).
Status fsync_directory(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return errno_error("fsync directory", dir, errno);
  return {};
}

}  // namespace

Status check_replaceable(const fs::path& path) {
  // The rename of write_file_atomically needs only the directory to be
  // writable, so it would replace a file its owner made read-only, or
  // another user's file: both are refused as a plain write would be. The
  // mode is checked too, because the kernel lets root write anything.
  struct stat existing {};
  if (::stat(path.c_str(), &existing) != 0) return {};
  if ((existing.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0) {
    return Error(Errc::permission, "cannot replace " + quoted(path) + ": the file is read-only " +
                                       mode_text(existing.st_mode));
  }
  if (::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0) {
    return errno_error("replace", path, errno);
  }
  return {};
}

std::optional<int> descriptor_named(std::string_view path) {
  if (path == "/dev/stdin") return STDIN_FILENO;
  if (path == "/dev/stdout") return data_fd();
  if (path == "/dev/stderr") return STDERR_FILENO;
  for (std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (!path.starts_with(prefix)) continue;
    std::string_view digits = path.substr(prefix.size());
    int fd = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) {
      if (fd == STDOUT_FILENO) return data_fd();  // the user's stdout, kept apart
      // envd's own copy of stdout is not a descriptor the user handed it:
      // named, it is one they did not open (EBADF when used).
      if (fd == data_fd()) return -1;
      return fd;
    }
  }
  return std::nullopt;
}

Status write_file_atomically(const fs::path& path, std::string_view content, mode_t mode,
                             ReadOnlyFile read_only) {
  // Through the descriptor, where the shell sent it: reopening
  // /proc/self/fd/1 would truncate a redirected log, and a rename would
  // replace the log's file with this content alone.
  if (auto fd = descriptor_named(path.native())) {
    return write_all(*fd, content, quoted(path));
  }
  if (read_only == ReadOnlyFile::refuse) {
    if (auto st = check_replaceable(path); !st) return st;
  }
  // What is not a regular file, followed through links (/dev/null, a
  // FIFO), is written in place; a rename would replace it, as root even a
  // device node.
  struct stat target {};
  const bool exists = ::stat(path.c_str(), &target) == 0;
  if (exists && !S_ISREG(target.st_mode)) {
    if (S_ISDIR(target.st_mode)) return errno_error("write", path, EISDIR);
    Fd out(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (out.get() < 0) return errno_error("write", path, errno);
    if (auto st = write_all(out.get(), content, quoted(path)); !st) return st;
    if (::close(out.release()) != 0) return errno_error("write", path, errno);
    return {};
  }
  // A symbolic link to a regular file (a dotfile manager's link to the
  // store) is kept: the file it resolves to is replaced, beside itself. A
  // rename over the link would replace the link.
  if (struct stat link{}; exists && ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
    std::error_code ec;
    const fs::path resolved = fs::canonical(path, ec);
    if (ec) return errno_error("resolve the link", path, ec.value());
    return write_file_atomically(resolved, content, mode, ReadOnlyFile::replace);
  }
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  // A temporary of its own, made with O_EXCL: two writers of one file (two
  // builds remembering a daemon's answer) never write into one inode, and
  // whatever sits at a name (a FIFO, which would block the open for ever; a
  // hard link to a file elsewhere, which the write would overwrite) is
  // never opened.
  std::string templ = temporary_template(path);
  Fd fd(::mkostemps(templ.data(), 4, O_CLOEXEC));
  if (fd.get() < 0) {
    // Named by the directory and the file to replace, not by the template
    // ("contexts.json.XXXXXX.tmp" is no file anyone made).
    const int err = errno;
    Error error = errno_error("create a file in", dir, err);
    return Error(error.code(), error.message() + " (to replace " + quoted(path) + ")");
  }
  const fs::path temp = templ;
  // A write that fails part-way (a full disk, RLIMIT_FSIZE) leaves the old
  // file as it was and no temporary file behind.
  auto fail = [&](const Error& error) {
    ::unlink(temp.c_str());
    return error;
  };
  if (::fchmod(fd.get(), mode) != 0) return fail(errno_error("chmod", temp, errno));
  if (auto st = write_all(fd.get(), content, quoted(temp)); !st) return fail(st.error());
  if (::fsync(fd.get()) != 0) return fail(errno_error("fsync", temp, errno));
  if (::close(fd.release()) != 0) return fail(errno_error("close", temp, errno));
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail(errno_error("replace", path, errno));
  // The rename is the commit: the file holds the new content from here on,
  // and the caller must not undo what it stands for. The directory's fsync
  // only makes the rename durable sooner; a directory this process may
  // write but not open (mode 0300) leaves that to the file system.
  (void)fsync_directory(dir);
  return {};
}

std::string temporary_template(const fs::path& path) {
  static constexpr std::string_view kSuffix = ".XXXXXX.tmp";
  std::string name = path.filename().string();
  if (name.size() + kSuffix.size() > NAME_MAX) {
    std::size_t keep = NAME_MAX - kSuffix.size();
    // Back to the first byte of the character the cut would split.
    while (keep > 0 && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;
    name.resize(keep);
  }
  return (path.parent_path() / (name + std::string(kSuffix))).string();
}

void remove_stale_temporaries(const fs::path& path) {
  const std::string name = path.filename().string();
  // "<name>." as temporary_template() cuts it; six letters or digits follow.
  const std::string templ = fs::path(temporary_template(path)).filename().string();
  const std::string prefix = templ.substr(0, templ.size() - std::string_view("XXXXXX.tmp").size());
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  std::error_code ec;
  fs::directory_iterator it(path.parent_path().empty() ? fs::path(".") : path.parent_path(), ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string entry = it->path().filename().string();
    // <name>.XXXXXX.tmp, and <name>.tmp of the envd versions before.
    bool ours = entry == name + ".tmp" ||
                (entry.size() == templ.size() && entry.rfind(prefix, 0) == 0 &&
                 std::all_of(entry.begin() + static_cast<std::ptrdiff_t>(prefix.size()),
                             entry.end() - 4, alnum) &&
                 entry.compare(entry.size() - 4, 4, ".tmp") == 0);
    // Unlinking removes only the name: a hard link's other names keep the
    // file, and a directory is not removed.
    if (ours) (void)::unlink(it->path().c_str());
  }
}

bool holds_other_than_a_file(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
}

Result<std::string> read_file(const fs::path& path) {
  return read_file(path, std::string::npos - 1);
}

Result<std::string> read_file(const fs::path& path, size_t limit) {
  // O_NONBLOCK: opening a FIFO waits for a writer otherwise, and every file
  // read here (the store, caches, keys) is one envd or the user wrote.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return errno_error("read", path, errno);
  auto too_large = [&] {
    return Error(Errc::invalid_argument,
                 quoted(path) + " is larger than " + std::to_string(limit) + " bytes");
  };
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("read", path, errno);
  if (!S_ISREG(st.st_mode)) {
    const char* kind = sdk::file_kind(st.st_mode);
    return Error(Errc::unsupported,
                 quoted(path) + " is " + kind + ", not a regular file; move it aside");
  }
  if (static_cast<unsigned long long>(st.st_size) > limit) return too_large();
  // Reads block again: a file on a slow disk is read whole, not in part.
  if (int flags = ::fcntl(fd.get(), F_GETFL); flags >= 0) {
    (void)::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  }
  auto content = read_all(fd.get(), limit, quoted(path));
  if (content && content->size() > limit) return too_large();
  return content;
}

Status write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return Error(
          err == EACCES || err == EPERM || err == EROFS ? Errc::permission : Errc::internal,
          "cannot write " + what + ": " + std::strerror(err));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> read_all(int fd, size_t limit, const std::string& what) {
  // Straight into the string, sized up front when fstat knows the size: no
  // bounce buffer and no regrowth, whose fresh pages each cost a page fault
  // (the context store of 1,000 contexts is 100 KB, read on every TAB).
  constexpr size_t kChunk = 65536;
  struct stat st {};
  size_t size = kChunk;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    size = static_cast<size_t>(st.st_size) + 1;  // the byte beyond sees the end (or growth)
  }
  std::string content;
  content.reserve(std::min(size, limit + 1));
  prefault_for_writing(content.data(), content.capacity());
  content.resize(std::min(size, limit + 1));
  size_t filled = 0;
  while (filled <= limit) {
    if (filled == content.size())
      content.resize(std::min(filled + std::max(filled, kChunk), limit + 1));
    ssize_t n = ::read(fd, content.data() + filled, content.size() - filled);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return Error(err == EACCES || err == EPERM ? Errc::permission : Errc::internal,
                   "cannot read " + what + ": " + std::strerror(err));
    }
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  content.resize(filled);
  return content;
}

Status create_directories(const fs::path& dir, mode_t mode) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  fs::path parent = dir.parent_path();
  if (!parent.empty() && parent != dir) {
    if (auto st = create_directories(parent, 0755); !st) return st;
  }
  if (::mkdir(dir.c_str(), mode) != 0) {
    // EEXIST: made meanwhile by another process, or something else is there.
    if (errno != EEXIST) return errno_error("create directory", dir, errno);
    if (!fs::is_directory(dir, ec)) {
      // A link whose target is missing (a configuration directory linked
      // into a dotfiles checkout not yet made): "Not a directory" would
      // send the user looking for a file.
      if (fs::is_symlink(fs::symlink_status(dir, ec))) {
        fs::path target = fs::read_symlink(dir, ec);
        if (!ec && !fs::exists(dir, ec)) {
          return Error(Errc::not_found, "cannot create directory " + quoted(dir) +
                                            ": it is a symbolic link to " + quoted(target) +
                                            ", which does not exist");
        }
      }
      return errno_error("create directory", dir, ENOTDIR);
    }
  }
  // mkdir honours the umask; the leaf must have exactly `mode` (0700 for private data).
  if (::chmod(dir.c_str(), mode) != 0) return errno_error("chmod", dir, errno);
  return {};
}

namespace {

// Whether `fd` (locked) is still the file `path` names: a holder that removed
// the lock file released a lock nobody else can take through the path.
Result<bool> names_the_locked_file(int fd, const fs::path& path) {
  struct stat held {};
  struct stat named {};
  if (::fstat(fd, &held) != 0) return errno_error("stat lock file", path, errno);
  if (::lstat(path.c_str(), &named) != 0) {
    if (errno == ENOENT) return false;
    return errno_error("stat lock file", path, errno);
  }
  return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

// Opens `path` and locks it with `take` until the file locked is the one the
// path names (a holder may have removed it meanwhile); the locked descriptor.
Result<int> lock_named_file(const fs::path& path, const std::function<Status(int)>& take) {
  for (;;) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == ELOOP) {
      // O_NOFOLLOW's answer for a link, whose strerror speaks of many.
      return Error(Errc::invalid_argument,
                   "cannot open lock file " + quoted(path) +
                       ": it is a symbolic link, which envd does not follow; remove it");
    }
    if (fd < 0) return errno_error("open lock file", path, errno);
    if (auto st = take(fd); !st) {
      ::close(fd);
      return st.error();
    }
    auto current = names_the_locked_file(fd, path);
    if (current && *current) return fd;
    ::close(fd);
    if (!current) return current.error();
  }
}

}  // namespace

Result<FileLock> FileLock::exclusive(const fs::path& path, const std::function<void()>& waiting) {
  // flock(2) has no timeout: until `waiting` has been called, the lock is
  // tried without blocking, with pauses growing to 20 ms.
  using Clock = std::chrono::steady_clock;
  const auto say_so_at = Clock::now() + std::chrono::seconds(1);
  auto pause = std::chrono::microseconds(500);
  bool blocking = !waiting;
  auto locked = lock_named_file(path, [&](int fd) -> Status {
    while (::flock(fd, blocking ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK && !blocking) {
        if (Clock::now() >= say_so_at) {
          waiting();
          blocking = true;
        } else {
          std::this_thread::sleep_for(pause);
          pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
        }
        continue;
      }
      return errno_error("lock", path, errno);
    }
    return {};
  });
  if (!locked) return locked.error();
  return FileLock(*locked, path);
}

Result<FileLock> FileLock::try_exclusive(const fs::path& path) {
  auto locked = lock_named_file(path, [&](int fd) -> Status {
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) {
        return Error(Errc::unavailable, quoted(path) + " is locked by another process");
      }
      return errno_error("lock", path, errno);
    }
    return {};
  });
  if (!locked) return locked.error();
  return FileLock(*locked, path);
}

FileLock::FileLock(FileLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      remove_(std::exchange(other.remove_, false)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    FileLock released(std::move(*this));
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    remove_ = std::exchange(other.remove_, false);
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ < 0) return;
  // Removed while held, and only if the path still names this file: a waiter
  // holding the removed file sees it is gone and opens the path again.
  if (remove_) {
    if (auto current = names_the_locked_file(fd_, path_); current && *current) {
      ::unlink(path_.c_str());
    }
  }
  ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace envd::util
