#include "buildkit/filesend.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/method_handler.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <utility>

#include "buildkit/fsutil_stat.hpp"
#include "buildkit/patterns.hpp"
#include "github.com/moby/buildkit/session/filesync/filesync.pb.h"
#include "github.com/tonistiigi/fsutil/types/wire.pb.h"
#include "util/atomic_file.hpp"

namespace envd::buildkit {

namespace {

using fsutil::types::Packet;
using Stream = grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

constexpr const char* kMethod = "/moby.filesync.v1.FileSend/DiffCopy";

std::string errno_text(int err) { return std::strerror(err); }

bool decode(grpc::ByteBuffer& buffer, google::protobuf::MessageLite& message) {
  grpc::ProtoBufferReader reader(&buffer);
  return message.ParseFromZeroCopyStream(&reader);
}

bool send(Stream* stream, const Packet& packet) {
  std::string bytes = packet.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer buffer(&slice, 1);
  return stream->Write(buffer);
}

// True for a clean relative path without ".." parts.
bool is_safe_path(const std::string& path) {
  if (path.empty() || path.front() == '/') return false;
  if (clean_relative_path(path) != path) return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (path.compare(start, slash - start, "..") == 0) return false;
    start = slash + 1;
  }
  return true;
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

timespec to_timespec(std::int64_t nanos) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(nanos / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(nanos % 1'000'000'000);
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1'000'000'000;
    ts.tv_sec -= 1;
  }
  return ts;
}

// Writes one exported tree (the fsutil receiver).
class TreeReceiver {
 public:
  TreeReceiver(Stream* stream, int root_fd) : stream_(stream), root_fd_(root_fd) {}

  ~TreeReceiver() {
    for (auto& [id, file] : files_) {
      if (file.fd >= 0) ::close(file.fd);
    }
  }

  grpc::Status run() {
    grpc::ByteBuffer buffer;
    Packet packet;
    while (stream_->Read(&buffer)) {
      if (!decode(buffer, packet)) return fail("cannot decode a packet from the daemon");
      switch (packet.type()) {
        case Packet::PACKET_STAT: {
          if (walk_done_) return fail("STAT after the end of the walk");
          auto status = packet.has_stat() ? on_stat(packet.stat()) : on_walk_done();
          if (!status.ok()) return status;
          break;
        }
        case Packet::PACKET_DATA: {
          auto status = on_data(packet.id(), packet.data());
          if (!status.ok()) return status;
          break;
        }
        case Packet::PACKET_FIN:
          if (!fin_sent_) return fail("FIN before the transfer was complete");
          return grpc::Status::OK;
        case Packet::PACKET_ERR:
          return {grpc::StatusCode::UNKNOWN, "the daemon aborted the export: " + packet.data()};
        default:
          return fail("unexpected packet type " + std::to_string(packet.type()));
      }
    }
    // After our FIN the daemon may cancel instead of answering.
    if (fin_sent_) return grpc::Status::OK;
    return {grpc::StatusCode::CANCELLED, "the daemon closed the export before it was complete"};
  }

 private:
  struct File {
    std::string path;
    std::uint32_t mode = 0;
    std::int64_t mtime = 0;
    int fd = -1;
  };
  struct Dir {
    std::string path;
    std::uint32_t mode = 0;
    std::int64_t mtime = 0;
  };

  grpc::Status on_stat(const fsutil::types::Stat& stat) {
    std::uint32_t id = next_id_++;
    const std::string& path = stat.path();
    if (!is_safe_path(path)) return fail("unsafe path '" + path + "'");
    std::string parent = parent_of(path);
    if (!parent.empty() && !dirs_.contains(parent)) {
      return fail("the parent of '" + path + "' was not sent as a directory");
    }
    std::uint32_t mode = stat.mode();
    const char* name = path.c_str();
    if (fsutil_mode::is_dir(mode)) {
      if (::mkdirat(root_fd_, name, 0700) != 0) {
        struct stat st {};
        if (errno != EEXIST || ::fstatat(root_fd_, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          return local_error("cannot create directory '" + path + "'");
        }
        if (!S_ISDIR(st.st_mode)) {
          if (!remove_existing(path) || ::mkdirat(root_fd_, name, 0700) != 0) {
            return local_error("cannot create directory '" + path + "'");
          }
        }
      }
      dirs_.insert(path);
      dir_list_.push_back({path, mode, stat.modtime()});
      return grpc::Status::OK;
    }
    if (!remove_existing(path)) return local_error("cannot replace '" + path + "'");
    if (fsutil_mode::is_symlink(mode)) {
      if (::symlinkat(stat.linkname().c_str(), root_fd_, name) != 0) {
        return local_error("cannot create symlink '" + path + "'");
      }
      timespec times[2] = {to_timespec(stat.modtime()), to_timespec(stat.modtime())};
      ::utimensat(root_fd_, name, times, AT_SYMLINK_NOFOLLOW);
      return grpc::Status::OK;
    }
    if (fsutil_mode::is_regular(mode) && !stat.linkname().empty()) {
      const std::string& target = stat.linkname();
      if (!is_safe_path(target) || !received_.contains(target)) {
        return fail("invalid hardlink '" + path + "' to unknown path '" + target + "'");
      }
      if (::linkat(root_fd_, target.c_str(), root_fd_, name, 0) != 0) {
        return local_error("cannot create hardlink '" + path + "'");
      }
      return grpc::Status::OK;
    }
    if (fsutil_mode::is_regular(mode)) {
      int fd = ::openat(root_fd_, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0) return local_error("cannot create '" + path + "'");
      files_[id] = File{path, mode, stat.modtime(), fd};
      received_.insert(path);
      Packet request;
      request.set_type(Packet::PACKET_REQ);
      request.set_id(id);
      if (!send(stream_, request)) {
        return {grpc::StatusCode::UNAVAILABLE, "the daemon went away during the export"};
      }
      return grpc::Status::OK;
    }
    mode_t posix = fsutil_mode::to_posix(mode);
    if (S_ISFIFO(posix) || S_ISCHR(posix) || S_ISBLK(posix)) {
      dev_t dev =
          makedev(static_cast<unsigned>(stat.devmajor()), static_cast<unsigned>(stat.devminor()));
      if (::mknodat(root_fd_, name, posix, dev) != 0) {
        if (!S_ISFIFO(posix) && (errno == EPERM || errno == EACCES)) return grpc::Status::OK;
        return local_error("cannot create special file '" + path + "'");
      }
      ::fchmodat(root_fd_, name, posix & 07777, 0);
      timespec times[2] = {to_timespec(stat.modtime()), to_timespec(stat.modtime())};
      ::utimensat(root_fd_, name, times, AT_SYMLINK_NOFOLLOW);
    }
    return grpc::Status::OK;  // sockets and unknown kinds are skipped
  }

  grpc::Status on_walk_done() {
    walk_done_ = true;
    return maybe_finish();
  }

  grpc::Status on_data(std::uint32_t id, const std::string& data) {
    auto it = files_.find(id);
    if (it == files_.end()) return fail("DATA for unrequested file ID " + std::to_string(id));
    File& file = it->second;
    if (!data.empty()) {
      const char* p = data.data();
      std::size_t left = data.size();
      while (left > 0) {
        auto n = ::write(file.fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return local_error("cannot write '" + file.path + "'");
        p += n;
        left -= static_cast<std::size_t>(n);
      }
      return grpc::Status::OK;
    }
    ::fchmod(file.fd, fsutil_mode::to_posix(file.mode) & 07777);
    timespec times[2] = {to_timespec(file.mtime), to_timespec(file.mtime)};
    ::futimens(file.fd, times);
    int rc = ::close(file.fd);
    file.fd = -1;
    if (rc != 0) return local_error("cannot write '" + file.path + "'");
    files_.erase(it);
    return maybe_finish();
  }

  grpc::Status maybe_finish() {
    if (!walk_done_ || !files_.empty() || fin_sent_) return grpc::Status::OK;
    // Directory modes and times last: creating entries changes a directory's
    // mtime, and a read-only directory could not have been filled.
    for (auto it = dir_list_.rbegin(); it != dir_list_.rend(); ++it) {
      ::fchmodat(root_fd_, it->path.c_str(), fsutil_mode::to_posix(it->mode) & 07777, 0);
      timespec times[2] = {to_timespec(it->mtime), to_timespec(it->mtime)};
      ::utimensat(root_fd_, it->path.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
    Packet fin;
    fin.set_type(Packet::PACKET_FIN);
    if (!send(stream_, fin)) {
      return {grpc::StatusCode::UNAVAILABLE, "the daemon went away during the export"};
    }
    fin_sent_ = true;
    return grpc::Status::OK;
  }

  // Removes whatever an earlier export left at `path` (not following links).
  bool remove_existing(const std::string& path) {
    struct stat st {};
    if (::fstatat(root_fd_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT;
    if (!S_ISDIR(st.st_mode)) return ::unlinkat(root_fd_, path.c_str(), 0) == 0;
    std::error_code ec;
    // The parent chain was verified to be real directories, so this stays
    // inside the output directory.
    std::filesystem::remove_all(
        std::filesystem::path("/proc/self/fd") / std::to_string(root_fd_) / path, ec);
    return !ec;
  }

  grpc::Status local_error(const std::string& what) {
    std::string message = what + ": " + errno_text(errno);
    send_err(message);
    return {grpc::StatusCode::INTERNAL, message};
  }

  grpc::Status fail(const std::string& why) {
    std::string message = "protocol error in the local export: " + why;
    send_err(message);
    return {grpc::StatusCode::INVALID_ARGUMENT, message};
  }

  void send_err(const std::string& message) {
    Packet err;
    err.set_type(Packet::PACKET_ERR);
    err.set_data(message);
    (void)send(stream_, err);
  }

  Stream* stream_;
  int root_fd_;
  std::uint32_t next_id_ = 0;
  bool walk_done_ = false;
  bool fin_sent_ = false;
  std::set<std::string> dirs_;
  std::vector<Dir> dir_list_;
  std::set<std::string> received_;
  std::map<std::uint32_t, File> files_;  // requested and not yet complete
};

}  // namespace

class FileSendTarget::Service final : public grpc::Service {
 public:
  Service(std::filesystem::path dir, Sink sink) : dir_(std::move(dir)), sink_(std::move(sink)) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        kMethod, grpc::internal::RpcMethod::BIDI_STREAMING,
        new grpc::internal::BidiStreamingHandler<Service, grpc::ByteBuffer, grpc::ByteBuffer>(
            [](Service* service, grpc::ServerContext* context, Stream* stream) {
              return service->diff_copy(context, stream);
            },
            this)));
  }

  std::string local_failure() const {
    std::lock_guard lock(mu_);
    return failure_;
  }

 private:
  grpc::Status diff_copy(grpc::ServerContext* context, Stream* stream) {
    grpc::Status status = sink_ ? receive_bytes(stream) : receive_tree(stream);
    // This end's failures: INTERNAL (a file it cannot write, the sink's
    // error) and INVALID_ARGUMENT (what the daemon sent breaks the protocol).
    // The daemon's own abort (its ERR packet, UNKNOWN) is the daemon's to
    // report.
    const auto code = status.error_code();
    if ((code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::INVALID_ARGUMENT) &&
        !context->IsCancelled()) {
      std::lock_guard lock(mu_);
      if (failure_.empty()) failure_ = status.error_message();
    }
    return status;
  }

  grpc::Status receive_tree(Stream* stream) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
      return {grpc::StatusCode::INTERNAL,
              "cannot create output directory '" + dir_.string() + "': " + ec.message()};
    }
    int root_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
      return {grpc::StatusCode::INTERNAL,
              "cannot open output directory '" + dir_.string() + "': " + errno_text(errno)};
    }
    grpc::Status status = TreeReceiver(stream, root_fd).run();
    ::close(root_fd);
    return status;
  }

  grpc::Status receive_bytes(Stream* stream) {
    grpc::ByteBuffer buffer;
    moby::filesync::v1::BytesMessage message;
    while (stream->Read(&buffer)) {
      if (!decode(buffer, message)) {
        return {grpc::StatusCode::INVALID_ARGUMENT, "cannot decode an export chunk"};
      }
      auto status = sink_(message.data());
      if (!status.ok()) return {grpc::StatusCode::INTERNAL, status.error().message()};
    }
    return grpc::Status::OK;
  }

  std::filesystem::path dir_;
  Sink sink_;
  mutable std::mutex mu_;
  std::string failure_;  // the first failure of this end; guarded by mu_
};

FileSendTarget::FileSendTarget(std::unique_ptr<Service> service) : service_(std::move(service)) {}

FileSendTarget::~FileSendTarget() = default;

std::unique_ptr<FileSendTarget> FileSendTarget::directory(std::filesystem::path dir) {
  return std::unique_ptr<FileSendTarget>(
      new FileSendTarget(std::make_unique<Service>(std::move(dir), nullptr)));
}

std::unique_ptr<FileSendTarget> FileSendTarget::stream(Sink sink) {
  return std::unique_ptr<FileSendTarget>(
      new FileSendTarget(std::make_unique<Service>(std::filesystem::path(), std::move(sink))));
}

FileSendTarget::Sink FileSendTarget::fd_sink(int fd, std::string what) {
  return [fd, what = std::move(what)](std::string_view chunk) -> Status {
    return util::write_all(fd, chunk, what);
  };
}

void FileSendTarget::register_on(grpc::ServerBuilder& builder) {
  builder.RegisterService(service_.get());
}

std::vector<std::string> FileSendTarget::methods() const { return {kMethod}; }

std::string FileSendTarget::local_failure() const { return service_->local_failure(); }

}  // namespace envd::buildkit
