// Internal to core/plugin: the manifest cache, so listing modules runs no
// module code when nothing changed (GStreamer's registry cache, in small).
//
// One JSON file (default <cache dir>/plugin-manifests.json, mode 0600):
//   {
//     "format": 1,
//     "abi_major": 1, "abi_minor": 0,          the envd that wrote it
//     "scanner": "...",                         and its scanner (scanner_identity())
//     "modules": {
//       "<canonical path>": { "size": N, "mtime_ns": N,
//                             "ok": true, "reason": "", "type": "tcp", "kind": "builder",
//                             "version": "...", "description": "...", "maturity": 1,
//                             "abi_major": 1, "abi_minor": 0 }, ...
//     }
//   }
// An entry is current when the file at that path still has that size and
// modification time (in nanoseconds). A cache written by an envd with another
// ABI version, format or scanner is ignored as a whole, since its verdicts may
// differ (a newer envd says more of a module an older one refused).
//
// The cache is derived data: a missing, unreadable or corrupt file is silently
// treated as empty and rewritten, and a failure to write it is ignored (the
// next run scans again). Only facts read from the module itself are cached,
// refusals included (a module that hangs while loading would otherwise cost
// the scan timeout on every run); permission and duplicate-type refusals are
// recomputed on every discovery. Touching or replacing a module refreshes it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "envd/result.hpp"
#include "plugin/registry.hpp"

namespace envd::plugin {

// What identifies one version of a module file.
struct ModuleStamp {
  std::string path;  // canonical
  int64_t size = 0;
  int64_t mtime_ns = 0;
  // A replacement that keeps size and mtime (cp -p, rsync -a, tar, dpkg all
  // keep the mtime) still changes these: a new file is a new inode, and
  // writing or renaming one sets its ctime, which no tool can set back.
  int64_t inode = 0;
  int64_t ctime_ns = 0;

  bool operator==(const ModuleStamp&) const = default;
};

// The stamp of the file at `canonical_path` now, or nullopt if it cannot be stat'ed.
std::optional<ModuleStamp> stamp_of(const std::filesystem::path& canonical_path);

class ManifestCache {
 public:
  ManifestCache() = default;

  // Reads `file`; never fails (see above). An empty path gives an empty cache.
  // Entries are taken only from a cache written for the same `scanner`.
  static ManifestCache load(const std::filesystem::path& file, const std::string& scanner = "");

  // The facts recorded for exactly this stamp, if any.
  std::optional<ModuleInfo> find(const ModuleStamp& stamp);
  // Records (or replaces) the facts for `stamp.path`. ModuleInfo::path is not stored.
  void store(const ModuleStamp& stamp, const ModuleInfo& facts);
  size_t size() const { return entries_.size(); }

  // The file content for the current entries. Entries neither found nor stored
  // since load() are kept only while their file still matches their stamp
  // (modules of other search paths stay cached; deleted ones are dropped).
  std::string serialize() const;

  // Writes serialize() atomically under <file>.lock, creating the directory
  // (0700) if needed, unless it equals what load() read.
  Status save(const std::filesystem::path& file) const;

 private:
  struct Entry {
    ModuleStamp stamp;
    ModuleInfo facts;
  };
  std::map<std::string, Entry> entries_;
  std::set<std::string> used_;
  std::string original_;
  std::string scanner_;
};

}  // namespace envd::plugin
