// FileSend: receives what exporters deliver to the client. The daemon calls
// /moby.filesync.v1.FileSend/DiffCopy on the session; what it streams depends
// on the exporter, so a FileSendTarget is built for one kind:
//
//  * directory (the `local` exporter): fsutil Packets with the daemon as
//    sender. The tree is written under the output directory (created if
//    missing; existing entries with the same names are replaced, others are
//    left alone). Regular files are requested and written, directories,
//    symlinks, hardlinks and named pipes created, permission bits (including
//    setuid/setgid/sticky) and modification times applied; ownership is left
//    to the current user, as buildctl does. Device nodes are created only when
//    permitted (skipped otherwise). Absolute paths, ".." parts, unclean paths,
//    entries whose parent was not sent as a directory and hardlinks to files
//    not received earlier are protocol errors: an ERR packet is sent and the
//    call fails with INVALID_ARGUMENT.
//  * byte stream (`tar`, `oci`, `docker`): BytesMessage chunks, each handed in
//    order to a caller's sink; the daemon's half-close ends the call with OK.
//    A sink error fails the call with its message (status INTERNAL).
//
// Because one method path carries two message types, the method is registered
// through a raw-bytes service (grpc::ByteBuffer in and out) and each message
// is decoded as Packet or BytesMessage according to the mode. The
// `buildkit-attachable-exporter-id` metadata is ignored: envd uses a single
// exporter per solve.
//
// Thread-safety: the sink is called from the gRPC handler thread, one call at
// a time per DiffCopy. Concurrent DiffCopy calls on one directory target would
// write the same tree; the daemon makes one per export.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "buildkit/attachable.hpp"
#include "envd/result.hpp"

namespace envd::buildkit {

class FileSendTarget : public Attachable {
 public:
  // Receives each chunk of the exported byte stream, in order. Returning an
  // error aborts the export with that message.
  using Sink = std::function<Status(std::string_view chunk)>;

  // Directory mode: writes the exported tree under `dir`.
  static std::unique_ptr<FileSendTarget> directory(std::filesystem::path dir);

  // Byte-stream mode: hands every chunk to `sink`.
  static std::unique_ptr<FileSendTarget> stream(Sink sink);

  // A sink writing every chunk to descriptor `fd` (a file, pipe or stdout),
  // retrying on EINTR and short writes. The descriptor stays the caller's: it
  // is neither closed nor synced. Errors read "cannot write <what>: <reason>".
  static Sink fd_sink(int fd, std::string what);

  ~FileSendTarget() override;
  FileSendTarget(const FileSendTarget&) = delete;
  FileSendTarget& operator=(const FileSendTarget&) = delete;

  // Why this end failed the export (a full disk, a path it cannot create,
  // the sink's error, a protocol error), or "" when it did not: the cause
  // to report, whatever the daemon then made of the stream's end (often
  // only "EOF"). Thread-safe.
  std::string local_failure() const;

  void register_on(grpc::ServerBuilder& builder) override;
  std::vector<std::string> methods() const override;  // {"/moby.filesync.v1.FileSend/DiffCopy"}

 private:
  class Service;
  explicit FileSendTarget(std::unique_ptr<Service> service);
  std::unique_ptr<Service> service_;
};

}  // namespace envd::buildkit
