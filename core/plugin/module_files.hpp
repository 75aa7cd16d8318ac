// Internal to core/plugin: finding module files in one directory and applying
// the permissions policy before anything reads them (osquery's safePermissions):
//   - a world-writable directory: every module in it is refused, since anyone
//     could have put it there or could replace it;
//   - a world-writable file: refused;
//   - a file owned by neither root nor the effective user: refused.
// Only regular files (symlinks are followed) whose name ends in ".so" count,
// in name order; any other "*.so" entry (a dangling link, a directory, a FIFO)
// is listed refused, with what it is. Nothing here loads or reads the modules.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace envd::plugin {

struct ModuleFile {
  std::filesystem::path path;       // <dir>/<name>, as found
  std::filesystem::path canonical;  // symlinks resolved
  std::string refusal;              // the permission problem, empty if none
};

// The module files of `dir` (a directory that exists), sorted by name. A
// directory that cannot be listed (no read or search permission) gives one
// entry, `dir` itself, whose refusal says so.
std::vector<ModuleFile> list_module_files(const std::filesystem::path& dir);

}  // namespace envd::plugin
