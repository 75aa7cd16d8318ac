#include "plugin/manifest_cache.hpp"

#include <sys/stat.h>

#include <boost/json.hpp>

#include "plugin/descriptor.hpp"
#include "util/atomic_file.hpp"
#include "util/json.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr int64_t kFormat = 1;
// A cache entry is a few hundred bytes; no set of modules comes near this.
constexpr std::size_t kMaxCacheBytes = std::size_t{16} << 20;

bool int_field(const json::object& object, const char* key, int64_t& out) {
  const json::value* v = object.if_contains(key);
  if (v == nullptr || !v->is_int64()) return false;
  out = v->get_int64();
  return true;
}

}  // namespace

std::optional<ModuleStamp> stamp_of(const fs::path& canonical_path) {
  struct stat st {};
  if (::stat(canonical_path.c_str(), &st) != 0) return std::nullopt;
  ModuleStamp stamp;
  stamp.path = canonical_path.native();
  stamp.size = static_cast<int64_t>(st.st_size);
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  stamp.inode = static_cast<int64_t>(st.st_ino);
  stamp.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
  return stamp;
}

ManifestCache ManifestCache::load(const fs::path& file, const std::string& scanner) {
  ManifestCache cache;
  cache.scanner_ = scanner;
  if (file.empty()) return cache;
  // Any unreadable cache (too large for any set of modules, not a regular
  // file) is an empty one: the modules are scanned again.
  auto text = util::read_file(file, kMaxCacheBytes);
  if (!text) return cache;
  cache.original_ = *text;
  auto parsed = util::parse_json(*text, "manifest cache");
  if (!parsed || !parsed->is_object()) return cache;
  const json::object& root = parsed->get_object();
  int64_t format = 0;
  int64_t major = 0;
  int64_t minor = 0;
  if (!int_field(root, "format", format) || format != kFormat ||
      !int_field(root, "abi_major", major) || major != ENVD_ABI_MAJOR ||
      !int_field(root, "abi_minor", minor) || minor != ENVD_ABI_MINOR) {
    return cache;
  }
  const json::value* written_by = root.if_contains("scanner");
  if (written_by == nullptr || !written_by->is_string() || written_by->get_string() != scanner) {
    return cache;
  }
  const json::value* modules = root.if_contains("modules");
  if (modules == nullptr || !modules->is_object()) return cache;
  for (const auto& [path, value] : modules->get_object()) {
    // A malformed entry is skipped; the module is simply scanned again.
    if (!value.is_object() || path.empty() || path[0] != '/') continue;
    const json::object& entry = value.get_object();
    Entry e;
    e.stamp.path = std::string(path);
    // An entry of an envd that kept no inode or ctime is scanned again.
    if (!int_field(entry, "size", e.stamp.size) ||
        !int_field(entry, "mtime_ns", e.stamp.mtime_ns) ||
        !int_field(entry, "inode", e.stamp.inode) ||
        !int_field(entry, "ctime_ns", e.stamp.ctime_ns)) {
      continue;
    }
    auto facts = facts_from_json(entry);
    if (!facts) continue;
    e.facts = std::move(*facts);
    cache.entries_[e.stamp.path] = std::move(e);
  }
  return cache;
}

std::optional<ModuleInfo> ManifestCache::find(const ModuleStamp& stamp) {
  auto it = entries_.find(stamp.path);
  if (it == entries_.end() || !(it->second.stamp == stamp)) return std::nullopt;
  used_.insert(stamp.path);
  return it->second.facts;
}

void ManifestCache::store(const ModuleStamp& stamp, const ModuleInfo& facts) {
  Entry& e = entries_[stamp.path];
  e.stamp = stamp;
  e.facts = facts;
  e.facts.path.clear();
  used_.insert(stamp.path);
}

std::string ManifestCache::serialize() const {
  json::object modules;
  for (const auto& [path, e] : entries_) {
    if (!used_.contains(path)) {
      auto now = stamp_of(path);
      if (!now || !(*now == e.stamp)) continue;
    }
    json::object entry;
    entry["size"] = e.stamp.size;
    entry["mtime_ns"] = e.stamp.mtime_ns;
    entry["inode"] = e.stamp.inode;
    entry["ctime_ns"] = e.stamp.ctime_ns;
    for (auto& [key, value] : facts_to_json(e.facts)) entry[key] = value;
    modules[path] = std::move(entry);
  }
  json::object root;
  root["format"] = kFormat;
  root["abi_major"] = static_cast<int64_t>(ENVD_ABI_MAJOR);
  root["abi_minor"] = static_cast<int64_t>(ENVD_ABI_MINOR);
  root["scanner"] = scanner_;
  root["modules"] = std::move(modules);
  return util::to_pretty_json(root);
}

Status ManifestCache::save(const fs::path& file) const {
  if (file.empty()) return {};
  if (entries_.empty() && original_.empty()) return {};  // nothing to remember
  std::string text = serialize();
  if (text == original_) return {};
  if (auto st = util::create_directories(file.parent_path(), 0700); !st) return st;
  fs::path lock_path = file;
  lock_path += ".lock";
  // Another envd writing the cache writes what it found; waiting for it would
  // only delay this command.
  auto lock = util::FileLock::try_exclusive(lock_path);
  if (!lock) return lock.error().code() == Errc::unavailable ? Status{} : Status{lock.error()};
  // Something other than a file at the path (a FIFO would block the write
  // for ever, a device take it) is left alone; the cache is only a speed-up.
  if (util::holds_other_than_a_file(file)) {
    return Error(Errc::invalid_argument,
                 "'" + file.string() + "' is not a regular file; the manifest cache is not kept");
  }
  return util::write_file_atomically(file, text, 0600, util::ReadOnlyFile::replace);
}

}  // namespace envd::plugin
