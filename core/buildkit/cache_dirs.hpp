// Local cache directories (`--cache-to type=local,dest=DIR`, `--cache-from
// type=local,src=DIR`): what the client does around the solve, as BuildKit's
// own client does it (client/solve.go, client/ociindex).
//
// A local cache directory is an OCI image layout: blobs under
// DIR/blobs/sha256/, written by the daemon through the session's content store
// (content_store.hpp), and DIR/index.json naming the cache's manifest by tag
// (annotation "org.opencontainers.image.ref.name"; the `tag` attr, default
// "latest").
//
//  * Before the solve, prepare_local_caches() creates each export's directory,
//    and resolves each import's tag to the `digest` attr the daemon needs. An
//    import whose directory has no index.json, whose tag is not in it, or
//    whose blob is missing is dropped with a warning (the build then runs
//    without it), as upstream does. The entries are edited in place, so the
//    frontend's "cache-imports" attr carries the digests too.
//  * After a successful solve, record_local_cache_exports() puts the
//    descriptor the daemon returns (exporter response "cache.manifest", a JSON
//    OCI descriptor) into each export directory's index.json under its tag,
//    replacing the entry the tag named before, and writes DIR/oci-layout.
//
// index.json is replaced atomically while DIR/index.json.lock is held.
#pragma once

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "buildkit/client.hpp"
#include "envd/result.hpp"

namespace envd::buildkit {

// The OCI annotation that names an index entry.
inline constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";

struct LocalCaches {
  // Directories the session's content store must serve (exports and the
  // imports kept); empty when the solve has no local cache.
  std::vector<std::filesystem::path> dirs;
  // Export directories whose index.json is updated after the solve, with the
  // tag to use ("" puts an untagged entry, as upstream).
  std::vector<std::pair<std::filesystem::path, std::string>> exports;
  // One line per import dropped, for the user.
  std::vector<std::string> warnings;
};

// Prepares the local entries of `exports` and `imports` (other types are left
// alone). Fails (Errc::internal / permission) only when an export directory
// cannot be created.
Result<LocalCaches> prepare_local_caches(std::vector<CacheEntry>& exports,
                                         std::vector<CacheEntry>& imports);

// Records the exported cache in every export directory of `caches`. Nothing to
// do when `exporter_response` has no "cache.manifest". Errors name the
// directory.
Status record_local_cache_exports(const LocalCaches& caches,
                                  const std::map<std::string, std::string>& exporter_response);

// The digest DIR/index.json names `tag` with: nullopt when the index has no
// such entry; an error when the index is missing (Errc::not_found) or
// malformed (Errc::invalid_argument).
Result<std::optional<std::string>> index_digest(const std::filesystem::path& dir,
                                                const std::string& tag);

// Puts `descriptor` (an OCI descriptor object: mediaType, digest, size, ...)
// into DIR/index.json under `tag`, removing the entries `tag` named before;
// creates the index when missing, and writes DIR/oci-layout.
Status put_index_entry(const std::filesystem::path& dir, const std::string& tag,
                       boost::json::object descriptor);

}  // namespace envd::buildkit
