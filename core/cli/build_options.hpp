// The `envd build` flags a CI pipeline uses beyond the Dockerfile and the
// output: build cache export and import, labels, hosts, named contexts, and
// what a pipeline reads back (the image ID file and buildx's metadata file).
// Each parser validates one flag value before anything is contacted and fails
// with Errc::invalid_argument, one line naming the flag and its value.
#pragma once

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "buildkit/client.hpp"
#include "envd/result.hpp"

namespace envd::cli {

// `--cache-to` / `--cache-from` (and upstream envd's `--export-cache` /
// `--import-cache`), in buildx's grammar: one CSV record of key=value fields,
// `type` among them, or a bare reference meaning type=registry,ref=VALUE.
//
//   type=registry,ref=REF[,mode=min|max][,compression=...][,...]
//   type=local,dest=DIR   (--cache-to)   type=local,src=DIR   (--cache-from)
//   type=inline           (--cache-to only: the cache rides in the image)
//
// Other types (gha, s3, azblob) are passed to the daemon, which says whether
// it has them. A local `dest`/`src` becomes an absolute path. `flag` names the
// flag in errors.
Result<buildkit::CacheEntry> parse_cache_export(const std::string& flag, const std::string& value);
Result<buildkit::CacheEntry> parse_cache_import(const std::string& flag, const std::string& value);

// A named build context (`--build-context NAME=VALUE`): a local directory,
// sent through the session as its own FileSync directory, or an image
// (`docker-image://REF`), which the Dockerfile's `FROM NAME` then resolves to.
struct NamedContext {
  std::string name;
  std::filesystem::path directory;  // set for a directory
  std::string image;                // set for docker-image://REF: "docker-image://REF"
};
Result<NamedContext> parse_build_context(const std::string& value);

// Adds what the flags say to the Dockerfile frontend's attributes:
// `--label K=V` as label:K, `--add-host HOST:IP` (or HOST=IP) as add-hosts,
// `--pull` as image-resolve-mode=pull, named contexts as context:NAME.
struct FrontendFlags {
  std::vector<std::string> labels;
  std::vector<std::string> add_hosts;
  bool pull = false;
  std::vector<NamedContext> contexts;
};
Status add_frontend_flags(const FrontendFlags& flags, std::map<std::string, std::string>& attrs);

// buildx's --metadata-file content for a solve's exporter response: every key,
// with values that are base64-encoded JSON objects decoded into JSON (as
// buildx does for e.g. containerimage.descriptor), the others as strings.
boost::json::object build_metadata(const std::map<std::string, std::string>& exporter_response);

// What --iidfile and --quiet print: the image ID as docker build gives it,
// the config digest (containerimage.config.digest) when the exporter reports
// one, else the manifest digest (containerimage.digest); "" when the export
// made no image (a local directory or a tarball of files).
std::string image_id(const std::map<std::string, std::string>& exporter_response);

// After envd pushed a moby export through the Engine (push=true on the
// moby-worker builder): the Engine's exporter reported the image ID as
// containerimage.digest, and the registry holds a manifest of another digest.
// As buildx does for its docker driver, containerimage.digest becomes the
// pushed manifest's digest (what a pipeline signs or deploys by), the image ID
// moves to containerimage.config.digest unless the daemon set that key, and
// image.name names the pushed references unless the daemon did.
void record_engine_push(std::map<std::string, std::string>& exporter_response,
                        const std::vector<std::string>& names, const std::string& manifest_digest);

}  // namespace envd::cli
