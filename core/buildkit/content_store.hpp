// ContentStore: the session service through which BuildKit's local cache
// exporter writes blobs into, and its importer reads them from, a directory on
// the client (`--cache-to type=local,dest=DIR`, `--cache-from
// type=local,src=DIR`). It is containerd's content API
// (/containerd.services.content.v1.Content/*), as BuildKit's own client serves
// it from session/content.
//
// One provider serves any number of OCI image-layout directories. The daemon
// names the one it means in every call with the request metadata
// `buildkit-attachable-store-id`, whose value is "local:" + the directory as
// sent in the cache attrs (store_id()). A call without it is INVALID_ARGUMENT,
// an unknown id NOT_FOUND.
//
// Layout: committed blobs are DIR/blobs/sha256/<hex> (mode 0444, as
// containerd's local store leaves them). An ingest (a Write call, named by the
// client's ref) is a temporary file under DIR/ingest/ with a random name; on
// COMMIT its size and SHA-256 are checked against what the client expects and
// it is renamed into place, so a blob is never seen half written. Refs are
// never part of a path; only digests that match sha256:[0-9a-f]{64} are.
// A Write whose stream ends without COMMIT leaves its ingest for a later Write
// with the same ref to resume (Status tells the offset) until Abort or the
// provider's destruction, which removes every unfinished ingest.
//
// Served: Info, Read (from an offset, for a size), Write (STAT, WRITE, COMMIT),
// Status, ListStatuses (filters are ignored: every ingest of the store is
// listed), Abort. Update answers FAILED_PRECONDITION (the store keeps no
// labels, as containerd's local store without a label store); List and Delete
// answer UNIMPLEMENTED: the daemon calls neither for cache.
//
// Error codes follow containerd's mapping, because the daemon keys on them: a
// missing blob or ingest is NOT_FOUND, a Write whose expected digest is already
// stored is ALREADY_EXISTS (the daemon then skips the blob), a ref already being
// written by another call is UNAVAILABLE (the daemon retries), a size or digest
// mismatch on COMMIT is FAILED_PRECONDITION, a write at the wrong offset
// OUT_OF_RANGE.
//
// Thread-safety: the service runs on gRPC's threads; calls on different refs
// proceed in parallel, one Write per ref at a time.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "buildkit/attachable.hpp"

namespace envd::buildkit {

// The request metadata key naming the store a call is for.
inline constexpr const char* kContentStoreIdKey = "buildkit-attachable-store-id";

// "sha256:<64 lowercase hex>" of `data`.
std::string sha256_digest(std::string_view data);

// True for "sha256:" followed by exactly 64 lowercase hex digits, the only
// digests the store accepts (and so the only client strings in its paths).
bool valid_sha256_digest(std::string_view digest);

class ContentStoreProvider : public Attachable {
 public:
  // The id BuildKit uses for a local cache directory: "local:" + `dir`, which
  // must be the exact string sent as the `dest`/`src` attr.
  static std::string store_id(const std::filesystem::path& dir);

  // `dirs`: the directories to serve (absolute paths, created when a blob is
  // first committed if missing). Each is served under store_id(dir).
  explicit ContentStoreProvider(const std::vector<std::filesystem::path>& dirs);
  // Removes the unfinished ingests (and DIR/ingest when it is left empty).
  ~ContentStoreProvider() override;
  ContentStoreProvider(const ContentStoreProvider&) = delete;
  ContentStoreProvider& operator=(const ContentStoreProvider&) = delete;

  void register_on(grpc::ServerBuilder& builder) override;
  // The Content methods served (Info, Update, Read, Status, ListStatuses,
  // Write, Abort), e.g. "/containerd.services.content.v1.Content/Write".
  std::vector<std::string> methods() const override;

 private:
  class Service;
  std::unique_ptr<Service> service_;
};

}  // namespace envd::buildkit
