#include "buildkit/filesync.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "buildkit/fsutil_stat.hpp"
#include "buildkit/patterns.hpp"
#include "buildkit/request_metadata.hpp"
#include "github.com/moby/buildkit/session/filesync/filesync.grpc.pb.h"
#include "util/text.hpp"

namespace envd::buildkit {

namespace {

using fsutil::types::Packet;
using fsutil::types::Stat;

// A context path in a message: escaped, so that a name holding a newline
// keeps the error on one line.
std::string shown_path(const std::string& rel) {
  return rel.empty() ? "." : util::printable(rel, 300);
}

using Stream = grpc::ServerReaderWriter<Packet, Packet>;

// DATA packets carry up to 1 MiB. fsutil's own sender uses 32 KiB, but its
// receiver takes any size, and each message costs both sides a trip through
// gRPC, the session tunnel and the daemon's Session stream: 1 MiB chunks cut
// a 256 MiB send by about a fifth of its wall time and half of envd's CPU.
// The bound is the receiving gRPC's default message limit, 4 MiB.
constexpr std::size_t kChunkSize = std::size_t{1} << 20;
constexpr const char* kMethod = "/moby.filesync.v1.FileSync/DiffCopy";

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string errno_text(int err) { return std::strerror(err); }

// Whether a path component holds a wildcard ('*', '?' or '['), a backslash
// quoting the character after it (fsutil's containsWildcards).
bool has_wildcard(std::string_view name) {
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '\\') {
      ++i;
    } else if (name[i] == '*' || name[i] == '?' || name[i] == '[') {
      return true;
    }
  }
  return false;
}

// fsutil's FollowLinks (v0.11's vendored version): the frontend's
// followpaths are COPY's and ADD's sources as written ("*.txt", "src/*.go",
// "linkdir/file"), and each becomes an include pattern, wildcards and all.
// Resolved component by component inside the root: every symlink met (a
// component with a wildcard: every matching entry that is a symlink) adds
// itself and its target, within the root, with the rest of the path below it.
class FollowResolver {
 public:
  explicit FollowResolver(int root_fd) : root_fd_(root_fd) {}

  void add(const std::string& path, int depth = 0) {
    const std::string clean = clean_relative_path(path);
    if (clean.empty()) {
      whole_root_ = true;
      return;
    }
    std::size_t start = 0;
    for (;;) {
      auto slash = clean.find('/', start);
      if (slash == std::string::npos) slash = clean.size();
      const std::string current = clean.substr(0, slash);
      const std::string rest = slash < clean.size() ? clean.substr(slash + 1) : "";
      auto targets = symlink_targets(current, true);
      if ((rest.empty() || !targets.empty()) && resolved_.contains(current)) return;
      if (!targets.empty()) {
        resolved_.insert(current);
        if (depth > 40) return;  // a loop the set above does not end
        for (const auto& target : targets) {
          std::string below = target;
          below.append("/").append(rest);
          add(below, depth + 1);
        }
        return;
      }
      if (rest.empty()) {
        resolved_.insert(current);
        return;
      }
      start = slash + 1;
    }
  }

  // The include patterns: the resolved paths, none under another (fsutil's
  // dedupePaths); nothing when a followpath is the root itself.
  std::vector<std::string> patterns() const {
    std::vector<std::string> out;
    if (whole_root_) return out;
    for (const auto& path : resolved_) {
      if (!out.empty() && path.starts_with(out.back() + "/")) continue;
      out.push_back(path);
    }
    return out;
  }

 private:
  // The targets of the symlink at `path` (relative to the root, and within
  // it: "/" + target, cleaned), or of every symlink matching it when its last
  // component has a wildcard (filepath.Match, which fnmatch(3) is for one
  // name). Empty when there is none.
  std::vector<std::string> symlink_targets(const std::string& path, bool wildcard) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
    const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    std::vector<std::string> out;
    if (wildcard && has_wildcard(base)) {
      int fd =
          ::openat(root_fd_, dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      DIR* listing = fd < 0 ? nullptr : ::fdopendir(fd);
      if (listing == nullptr) {
        if (fd >= 0) ::close(fd);
        return out;
      }
      std::vector<std::string> names;
      while (dirent* entry = ::readdir(listing)) {
        std::string_view name = entry->d_name;
        if (name == "." || name == "..") continue;
        if (::fnmatch(base.c_str(), entry->d_name, 0) == 0) names.emplace_back(name);
      }
      ::closedir(listing);
      std::sort(names.begin(), names.end());
      for (const auto& name : names) {
        std::string entry = dir;
        if (!entry.empty()) entry += '/';
        entry += name;
        auto targets = symlink_targets(entry, false);
        out.insert(out.end(), targets.begin(), targets.end());
      }
      return out;
    }
    struct stat st {};
    if (::fstatat(root_fd_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode)) {
      return out;
    }
    std::string target(4096, '\0');
    auto n = ::readlinkat(root_fd_, path.c_str(), target.data(), target.size());
    if (n < 0) return out;
    target.resize(static_cast<std::size_t>(n));
    // Absolute targets are taken from the root, relative ones from the
    // link's directory; clean_relative_path keeps both inside the root.
    out.push_back(target.starts_with('/') ? target : dir + "/" + target);
    return out;
  }

  int root_fd_;
  std::set<std::string> resolved_;
  bool whole_root_ = false;
};

// Walks a tree in fsutil order and hands each entry that passes the filters,
// preceded by any parent directories not sent yet, to `emit`.
class Walker {
 public:
  using Emit = std::function<bool(Stat&, bool is_file)>;

  Walker(const PatternMatcher& include, const PatternMatcher& exclude, Emit emit)
      : include_(include), exclude_(exclude), emit_(std::move(emit)) {}

  // Returns "" on success or when `emit` stopped the walk, else an error text.
  std::string walk(int dir_fd, const std::string& rel) {
    int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    DIR* dir = dup_fd < 0 ? nullptr : ::fdopendir(dup_fd);
    if (dir == nullptr) {
      int err = errno;
      if (dup_fd >= 0) ::close(dup_fd);
      return "cannot read directory '" + shown_path(rel) + "': " + errno_text(err);
    }
    std::vector<std::string> names;
    errno = 0;
    while (dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    int read_errno = errno;
    ::closedir(dir);
    if (read_errno != 0) {
      return "cannot read directory '" + shown_path(rel) + "': " + errno_text(read_errno);
    }
    std::sort(names.begin(), names.end());

    for (const auto& name : names) {
      if (stopped_) return {};
      std::string path = rel;
      if (!path.empty()) path += '/';
      path += name;
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while walking
        return "cannot stat '" + path + "': " + errno_text(errno);
      }
      if (S_ISSOCK(st.st_mode)) continue;
      bool include_hit = include_.empty() || include_.matches(path);
      bool exclude_hit = exclude_.matches(path);
      bool selected = include_hit && !exclude_hit;
      if (S_ISDIR(st.st_mode)) {
        bool descend = selected || ((include_hit || include_.may_match_below(path)) &&
                                    (!exclude_hit || exclude_.may_reinclude_below(path)));
        if (!descend) continue;
        pending_.push_back(make_stat(path, st));
        if (selected && !flush()) return {};
        Fd child(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (child.get() < 0) return "cannot open directory '" + path + "': " + errno_text(errno);
        std::string error = walk(child.get(), path);
        if (!error.empty()) return error;
        pending_.pop_back();
        flushed_ = std::min(flushed_, pending_.size());
        continue;
      }
      if (!selected) continue;
      Stat stat = make_stat(path, st);
      if (S_ISLNK(st.st_mode)) {
        std::string target(static_cast<std::size_t>(std::max<off_t>(st.st_size, 255)) + 1, '\0');
        auto n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
        if (n < 0) return "cannot read symlink '" + path + "': " + errno_text(errno);
        target.resize(static_cast<std::size_t>(n));
        stat.set_linkname(std::move(target));
      } else if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
        // A later name of a file sent before: its first name, and the
        // file's size all the same, as fsutil's mkstat leaves it (its size
        // is set after the link). The daemon compares an incoming stat with
        // its own copy's on a rebuild: a size of 0 made every hard link
        // "modified", and the daemon's relinking left a .tmp.N file behind.
        auto [it, first] = links_.try_emplace({st.st_dev, st.st_ino}, path);
        if (!first) stat.set_linkname(it->second);
      }
      if (!flush()) return {};
      if (!emit_(stat, S_ISREG(st.st_mode) && stat.linkname().empty())) stopped_ = true;
    }
    return {};
  }

 private:
  static Stat make_stat(const std::string& path, const struct stat& st) {
    Stat stat;
    stat.set_path(path);
    stat.set_mode(fsutil_mode::from_posix(st.st_mode));
    stat.set_uid(st.st_uid);
    stat.set_gid(st.st_gid);
    if (!S_ISDIR(st.st_mode)) stat.set_size(st.st_size);
    stat.set_modtime(static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                     st.st_mtim.tv_nsec);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      stat.set_devmajor(major(st.st_rdev));
      stat.set_devminor(minor(st.st_rdev));
    }
    return stat;
  }

  // Sends the parent directories that were held back; false once stopped.
  bool flush() {
    for (; flushed_ < pending_.size(); ++flushed_) {
      if (!emit_(pending_[flushed_], false)) {
        stopped_ = true;
        return false;
      }
    }
    return true;
  }

  const PatternMatcher& include_;
  const PatternMatcher& exclude_;
  Emit emit_;
  std::vector<Stat> pending_;
  std::size_t flushed_ = 0;
  bool stopped_ = false;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

// One DiffCopy call: the handler thread reads, a writer thread walks and
// answers REQs, so no two threads ever write to the stream.
class Transfer {
 public:
  Transfer(grpc::ServerContext* context, Stream* stream, int root_fd, PatternMatcher include,
           PatternMatcher exclude)
      : context_(context),
        stream_(stream),
        root_fd_(root_fd),
        include_(std::move(include)),
        exclude_(std::move(exclude)) {}

  grpc::Status run() {
    std::thread writer([this] { write_side(); });
    bool got_fin = false;
    std::string daemon_error;
    std::string protocol_error;
    Packet packet;
    while (stream_->Read(&packet)) {
      if (packet.type() == Packet::PACKET_REQ) {
        std::lock_guard lock(mu_);
        requests_.push_back(packet.id());
        cv_.notify_one();
        continue;
      }
      if (packet.type() == Packet::PACKET_FIN) {
        got_fin = true;
      } else if (packet.type() == Packet::PACKET_ERR) {
        daemon_error = packet.data();
      } else {
        protocol_error = "unexpected packet type " + std::to_string(packet.type());
      }
      break;
    }
    {
      std::lock_guard lock(mu_);
      if (got_fin) {
        fin_ = true;
      } else {
        abort_ = true;
        if (!protocol_error.empty()) writer_error_ = protocol_error;
      }
      cv_.notify_one();
    }
    // A writer blocked in Write on a daemon that stopped reading would never
    // return; cancelling the call releases it.
    if (!got_fin) context_->TryCancel();
    writer.join();
    if (!daemon_error.empty()) {
      return {grpc::StatusCode::UNKNOWN, "the daemon aborted the transfer: " + daemon_error};
    }
    if (!failure_.ok()) return failure_;
    if (!got_fin) {
      return {grpc::StatusCode::CANCELLED, "the daemon closed the transfer before FIN"};
    }
    return grpc::Status::OK;
  }

 private:
  void write_side() {
    Packet packet;
    std::uint32_t next_id = 0;
    Walker walker(include_, exclude_, [&](Stat& stat, bool is_file) {
      if (is_file) {
        if (files_.size() <= next_id) files_.resize(next_id + 1);
        files_[next_id] = stat.path();
      }
      ++next_id;
      packet.Clear();
      packet.set_type(Packet::PACKET_STAT);
      packet.mutable_stat()->Swap(&stat);
      if (!write(packet)) return false;
      return serve_requests(false);
    });
    std::string error = walker.walk(root_fd_, "");
    if (!error.empty()) return fail(grpc::StatusCode::UNAVAILABLE, error);
    if (!failure_.ok() || aborted()) return;
    files_.resize(next_id);
    served_.resize(next_id, false);
    packet.Clear();
    packet.set_type(Packet::PACKET_STAT);
    if (!write(packet)) return;
    if (!serve_requests(true)) return;
    packet.Clear();
    packet.set_type(Packet::PACKET_FIN);
    write(packet);
  }

  bool aborted() {
    std::lock_guard lock(mu_);
    return abort_;
  }

  // Answers queued REQs. With `until_fin`, waits for more until the daemon's
  // FIN (true) or an abort (false); otherwise returns once the queue is empty.
  bool serve_requests(bool until_fin) {
    for (;;) {
      std::uint32_t id = 0;
      {
        std::unique_lock lock(mu_);
        if (until_fin) cv_.wait(lock, [&] { return !requests_.empty() || fin_ || abort_; });
        if (abort_) {
          if (!writer_error_.empty()) {
            lock.unlock();
            fail(grpc::StatusCode::INVALID_ARGUMENT, "protocol error: " + writer_error_);
          }
          return false;
        }
        if (requests_.empty()) return true;  // fin_ (or nothing queued yet)
        id = requests_.front();
        requests_.pop_front();
      }
      if (!send_file(id)) return false;
    }
  }

  bool send_file(std::uint32_t id) {
    if (served_.size() < files_.size()) served_.resize(files_.size(), false);
    if (id >= files_.size() || files_[id].empty() || served_[id]) {
      fail(grpc::StatusCode::INVALID_ARGUMENT,
           "protocol error: request for unknown or already sent file ID " + std::to_string(id));
      return false;
    }
    served_[id] = true;
    data_.Clear();
    data_.set_type(Packet::PACKET_DATA);
    data_.set_id(id);
    // A file that cannot be opened fails the send, naming it: fsutil sends
    // such a file empty, which builds an image with the file's content
    // silently lost (an unreadable key, a file removed mid-build). So does
    // one that stopped being a regular file since the walk saw it; O_NONBLOCK
    // keeps the open of a FIFO put in its place from blocking for ever, and
    // changes nothing for a regular file.
    // A link (O_NOFOLLOW's ELOOP) or a socket (ENXIO) put in its place is
    // no longer the file the walk saw either.
    Fd file(::openat(root_fd_, files_[id].c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    const int open_errno = errno;
    struct stat st {};
    const bool replaced = file.get() < 0 ? open_errno == ELOOP || open_errno == ENXIO
                                         : ::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode);
    if (replaced) {
      fail(grpc::StatusCode::FAILED_PRECONDITION, "'" + shown_path(files_[id]) +
                                                      "' changed while it was sent: it is no "
                                                      "longer a regular file");
      return false;
    }
    if (file.get() < 0) {
      fail(grpc::StatusCode::FAILED_PRECONDITION,
           "cannot read '" + shown_path(files_[id]) + "': " + errno_text(open_errno));
      return false;
    }
    if (st.st_size > static_cast<off_t>(kChunkSize)) {
      ::posix_fadvise(file.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    // Read into a buffer of our own: sizing the packet's string to a whole
    // chunk first would zero 1 MiB for every small file.
    if (!chunk_) chunk_ = std::make_unique_for_overwrite<char[]>(kChunkSize);
    for (;;) {
      auto n = ::read(file.get(), chunk_.get(), kChunkSize);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int read_errno = errno;
        fail(grpc::StatusCode::FAILED_PRECONDITION,
             "cannot read '" + shown_path(files_[id]) + "': " + errno_text(read_errno));
        return false;
      }
      if (n == 0) break;
      data_.set_data(chunk_.get(), static_cast<std::size_t>(n));
      if (!write(data_)) return false;
    }
    data_.clear_data();
    return write(data_);
  }

  // One sync Write per packet: gRPC's buffer hint would leave a sync Write
  // waiting for a later flush.
  bool write(const Packet& packet) {
    if (stream_->Write(packet)) return true;
    if (failure_.ok()) failure_ = {grpc::StatusCode::UNAVAILABLE, "the daemon went away"};
    return false;
  }

  // Reports a local failure to the daemon.
  void fail(grpc::StatusCode code, const std::string& message) {
    failure_ = grpc::Status(code, message);
    Packet packet;
    packet.set_type(Packet::PACKET_ERR);
    packet.set_data(message);
    stream_->Write(packet);
    // The daemon ends the call when it reads ERR, which releases the reader;
    // one that does not is cut off so the handler cannot hang.
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return abort_ || fin_; })) {
      context_->TryCancel();
    }
  }

  grpc::ServerContext* context_;
  Stream* stream_;
  int root_fd_;
  PatternMatcher include_;
  PatternMatcher exclude_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::uint32_t> requests_;
  bool fin_ = false;
  bool abort_ = false;
  std::string writer_error_;

  // Writer thread only (read by run() after join).
  std::vector<std::string> files_;  // by ID; "" for entries that are not files
  std::vector<bool> served_;
  Packet data_;
  std::unique_ptr<char[]> chunk_;  // kChunkSize bytes, read into
  grpc::Status failure_;
};

}  // namespace

class FileSyncProvider::Service final : public moby::filesync::v1::FileSync::Service {
 public:
  explicit Service(std::map<std::string, std::filesystem::path> dirs) : dirs_(std::move(dirs)) {}

  grpc::Status DiffCopy(grpc::ServerContext* context, Stream* stream) override {
    auto names = metadata_values(*context, "dir-name");
    if (names.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "no dir-name in the request"};
    auto it = dirs_.find(names.front());
    if (it == dirs_.end()) {
      return {grpc::StatusCode::NOT_FOUND, "no local directory named '" + names.front() + "'"};
    }
    const auto& root = it->second;
    Fd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root_fd.get() < 0) {
      return {grpc::StatusCode::NOT_FOUND,
              "cannot open local directory '" + root.string() + "': " + errno_text(errno)};
    }
    auto include_patterns = metadata_values(*context, "include-patterns");
    auto exclude_patterns = metadata_values(*context, "exclude-patterns");
    FollowResolver follow(root_fd.get());
    for (const auto& path : metadata_values(*context, "followpaths")) follow.add(path);
    for (auto& pattern : follow.patterns()) include_patterns.push_back(std::move(pattern));
    auto include = PatternMatcher::create(include_patterns);
    if (!include) return {grpc::StatusCode::INVALID_ARGUMENT, include.error().message()};
    auto exclude = PatternMatcher::create(exclude_patterns);
    if (!exclude) return {grpc::StatusCode::INVALID_ARGUMENT, exclude.error().message()};
    Transfer transfer(context, stream, root_fd.get(), std::move(*include), std::move(*exclude));
    return transfer.run();
  }

 private:
  std::map<std::string, std::filesystem::path> dirs_;
};

FileSyncProvider::FileSyncProvider(std::map<std::string, std::filesystem::path> dirs)
    : service_(std::make_unique<Service>(std::move(dirs))) {}

FileSyncProvider::~FileSyncProvider() = default;

void FileSyncProvider::register_on(grpc::ServerBuilder& builder) {
  builder.RegisterService(service_.get());
}

std::vector<std::string> FileSyncProvider::methods() const { return {kMethod}; }

}  // namespace envd::buildkit
