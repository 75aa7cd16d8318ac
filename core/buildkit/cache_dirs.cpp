#include "buildkit/cache_dirs.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "buildkit/content_store.hpp"
#include "util/atomic_file.hpp"
#include "util/json.hpp"

namespace envd::buildkit {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// The key of BuildKit's cache exporter response (remotecache
// ExporterResponseManifestDesc): a JSON OCI descriptor.
constexpr const char* kCacheManifestKey = "cache.manifest";

std::string tag_of(const CacheEntry& entry) {
  auto it = entry.attrs.find("tag");
  return it == entry.attrs.end() ? "latest" : it->second;
}

bool has_blob(const fs::path& dir, const std::string& digest) {
  std::error_code ec;
  return valid_sha256_digest(digest) &&
         fs::is_regular_file(dir / "blobs" / "sha256" / digest.substr(7), ec);
}

void add_dir(LocalCaches& caches, const fs::path& dir) {
  if (std::find(caches.dirs.begin(), caches.dirs.end(), dir) == caches.dirs.end()) {
    caches.dirs.push_back(dir);
  }
}

Result<json::object> read_index(const fs::path& dir) {
  fs::path path = dir / "index.json";
  auto text = util::read_file(path);
  if (!text) return text.error();
  auto value = util::parse_json(*text, path.string());
  if (!value) return Error(Errc::invalid_argument, value.error().message());
  if (!value->is_object()) {
    return Error(Errc::invalid_argument, path.string() + " is not a JSON object");
  }
  auto& index = value->as_object();
  if (auto* manifests = index.if_contains("manifests");
      manifests != nullptr && !manifests->is_array() && !manifests->is_null()) {
    return Error(Errc::invalid_argument, path.string() + ": 'manifests' is not an array");
  }
  return std::move(index);
}

std::string ref_name(const json::value& manifest) {
  const auto* object = manifest.if_object();
  if (object == nullptr) return {};
  const auto* annotations = object->if_contains("annotations");
  if (annotations == nullptr || !annotations->is_object()) return {};
  const auto* name = annotations->as_object().if_contains(kRefNameAnnotation);
  return name != nullptr && name->is_string() ? std::string(name->as_string()) : std::string();
}

}  // namespace

Result<std::optional<std::string>> index_digest(const fs::path& dir, const std::string& tag) {
  auto index = read_index(dir);
  if (!index) return index.error();
  const auto* manifests = index->if_contains("manifests");
  if (manifests == nullptr || !manifests->is_array()) return std::optional<std::string>();
  for (const auto& manifest : manifests->as_array()) {
    if (ref_name(manifest) != tag) continue;
    const auto* digest = manifest.as_object().if_contains("digest");
    if (digest != nullptr && digest->is_string()) {
      return std::optional<std::string>(std::string(digest->as_string()));
    }
  }
  return std::optional<std::string>();
}

Status put_index_entry(const fs::path& dir, const std::string& tag, json::object descriptor) {
  auto lock = util::FileLock::exclusive(dir / "index.json.lock");
  if (!lock) return lock.error();
  // Gone when done, as BuildKit's own clients leave the layout: the
  // directory is what a CI job saves as its cache.
  lock->remove_when_released();
  json::object index;
  auto existing = read_index(dir);
  if (existing) {
    index = std::move(*existing);
  } else if (existing.error().code() != Errc::not_found) {
    return existing.error();
  }
  if (!index.contains("schemaVersion")) index["schemaVersion"] = 2;
  json::array manifests;
  if (auto* old = index.if_contains("manifests"); old != nullptr && old->is_array()) {
    for (auto& manifest : old->as_array()) {
      // An untagged export keeps every entry, as upstream.
      if (tag.empty() || ref_name(manifest) != tag) manifests.push_back(std::move(manifest));
    }
  }
  if (!tag.empty()) {
    auto* annotations = descriptor.if_contains("annotations");
    if (annotations == nullptr || !annotations->is_object()) {
      descriptor["annotations"] = json::object();
      annotations = descriptor.if_contains("annotations");
    }
    annotations->as_object()[kRefNameAnnotation] = tag;
  }
  manifests.push_back(std::move(descriptor));
  index["manifests"] = std::move(manifests);
  // Written once: the same every time, and rewriting it would fail a build
  // over a layout file the user made read-only.
  const std::string layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
  if (auto old = util::read_file(dir / "oci-layout"); !old || *old != layout) {
    if (auto st = util::write_file_atomically(dir / "oci-layout", layout, 0644); !st) return st;
  }
  return util::write_file_atomically(dir / "index.json", json::serialize(index), 0644);
}

Result<LocalCaches> prepare_local_caches(std::vector<CacheEntry>& exports,
                                         std::vector<CacheEntry>& imports) {
  LocalCaches caches;
  for (const auto& entry : exports) {
    if (entry.type != "local") continue;
    auto dest = entry.attrs.find("dest");
    if (dest == entry.attrs.end() || dest->second.empty()) {
      return Error(Errc::invalid_argument, "--cache-to type=local needs dest=DIR");
    }
    fs::path dir = dest->second;
    if (auto st = util::create_directories(dir, 0755); !st) {
      return st.error().wrap("cannot create the cache directory");
    }
    add_dir(caches, dir);
    caches.exports.emplace_back(dir, tag_of(entry));
  }
  for (auto it = imports.begin(); it != imports.end();) {
    if (it->type != "local") {
      ++it;
      continue;
    }
    auto src = it->attrs.find("src");
    if (src == it->attrs.end() || src->second.empty()) {
      return Error(Errc::invalid_argument, "--cache-from type=local needs src=DIR");
    }
    fs::path dir = src->second;
    std::string skipped = "local cache import at " + dir.string() + " skipped: ";
    std::string& digest = it->attrs["digest"];
    std::string problem;
    if (digest.empty()) {
      std::string tag = tag_of(*it);
      auto found = index_digest(dir, tag);
      if (!found) {
        problem = found.error().message();
      } else if (!*found) {
        problem = "no digest found for tag '" + tag + "' in " + (dir / "index.json").string();
      } else {
        digest = **found;
      }
    }
    if (problem.empty() && !has_blob(dir, digest)) {
      problem = "digest " + digest + " unavailable in " + dir.string();
    }
    if (!problem.empty()) {
      caches.warnings.push_back(skipped + problem);
      it = imports.erase(it);
      continue;
    }
    add_dir(caches, dir);
    ++it;
  }
  return caches;
}

Status record_local_cache_exports(const LocalCaches& caches,
                                  const std::map<std::string, std::string>& exporter_response) {
  auto manifest = exporter_response.find(kCacheManifestKey);
  if (manifest == exporter_response.end() || manifest->second.empty() || caches.exports.empty()) {
    return {};
  }
  const std::string what = "the daemon's cache descriptor";
  auto value = util::parse_json(manifest->second, what);
  if (!value) return value.error();
  const auto* descriptor = value->if_object();
  if (descriptor == nullptr) return Error(Errc::internal, what + " is not a JSON object");
  const auto* digest = descriptor->if_contains("digest");
  const auto* size = descriptor->if_contains("size");
  if (digest == nullptr || !digest->is_string() || !valid_sha256_digest(digest->as_string()) ||
      size == nullptr || !size->is_int64()) {
    return Error(Errc::internal, what + " has no valid digest and size: " + manifest->second);
  }
  for (const auto& [dir, tag] : caches.exports) {
    if (auto st = put_index_entry(dir, tag, *descriptor); !st) {
      return st.error().wrap("cannot record the cache in " + (dir / "index.json").string());
    }
  }
  return {};
}

}  // namespace envd::buildkit
