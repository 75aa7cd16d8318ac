// FileSync: sends local directories (the build context, the Dockerfile's
// directory) to the daemon, which calls /moby.filesync.v1.FileSync/DiffCopy on
// the session. The daemon is the fsutil receiver; this is the sender.
//
// Each call names a directory with the `dir-name` metadata and filters it with
// `include-patterns`, `exclude-patterns` (Docker .dockerignore syntax, see
// patterns.hpp) and `followpaths` (paths that must be sent, with every symlink
// on the way and its target). A `<key>-encoded: 1` entry means the values of
// <key> are URL query-escaped. The tree is walked afresh on every call.
//
// Wire behaviour: STAT packets for every entry in depth-first pre-order with
// names in byte order (IDs are 0-based STAT positions), then an empty STAT;
// REQ{ID} is answered with DATA chunks of up to 1 MiB and an empty DATA; FIN is
// answered with FIN and status OK; ERR from the daemon fails the call.
// Sockets are skipped; a second path of a hard-linked inode is sent as a
// hardlink to the first. Errors: unknown dir-name NOT_FOUND, bad patterns
// INVALID_ARGUMENT, an unreadable tree or protocol violation an ERR packet and
// a failed status.
//
// Thread-safety: the provider is immutable once built; the server may run any
// number of DiffCopy calls at once. Each call uses one extra thread.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "buildkit/attachable.hpp"

namespace envd::buildkit {

class FileSyncProvider : public Attachable {
 public:
  // `dirs` maps each dir-name the daemon may ask for (e.g. "context",
  // "dockerfile") to an absolute directory. The directories are read only
  // when the daemon asks.
  explicit FileSyncProvider(std::map<std::string, std::filesystem::path> dirs);
  ~FileSyncProvider() override;
  FileSyncProvider(const FileSyncProvider&) = delete;
  FileSyncProvider& operator=(const FileSyncProvider&) = delete;

  void register_on(grpc::ServerBuilder& builder) override;
  std::vector<std::string> methods() const override;  // {"/moby.filesync.v1.FileSync/DiffCopy"}

 private:
  class Service;
  std::unique_ptr<Service> service_;
};

}  // namespace envd::buildkit
