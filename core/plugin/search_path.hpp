// Where driver modules are looked for, in order (first match per type wins):
//   1. each directory of $ENVD_PLUGIN_PATH (colon-separated, empty entries skipped)
//   2. <XDG data home>/envd/plugins (the user's own modules)
//   3. <prefix>/<libdir>/envd/plugins under the prefix envd runs from
//      (util::install_prefix()): a relocated install, and the build tree,
//      which mirrors an install prefix
//   4. the same directory under the configured install prefix
//      (ENVD_INSTALL_PLUGIN_DIR)
// Duplicate directories (same canonical path) are listed once; directories that
// do not exist (or are not directories) are skipped silently. The result holds
// canonical paths.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace envd::plugin {

std::vector<std::filesystem::path> default_search_path();

// <cache dir>/plugin-manifests.json, or empty if no cache dir can be found.
std::filesystem::path default_manifest_cache();

// Where modules are installed under `prefix`: <prefix>/<libdir>/envd/plugins,
// libdir being the build's (CMAKE_INSTALL_LIBDIR: "lib", or Debian's
// "lib/x86_64-linux-gnu" under /usr).
std::filesystem::path plugin_dir_under(const std::filesystem::path& prefix);

// The inputs default_search_path() reads from the process, so the ordering and
// deduplication rules can be exercised without touching the environment. An
// empty path is skipped.
struct SearchPathSources {
  std::string_view env_path{};          // $ENVD_PLUGIN_PATH, colon-separated
  std::filesystem::path data_dir{};     // util::data_dir()
  std::filesystem::path prefix{};       // util::install_prefix()
  std::filesystem::path install_dir{};  // ENVD_INSTALL_PLUGIN_DIR
};
// Entries of $ENVD_PLUGIN_PATH that are not absolute are never searched:
// resolved against the working directory, they would let whoever controls
// the directory envd runs in supply its code.
std::vector<std::filesystem::path> make_search_path(const SearchPathSources& sources);

// The entries of `env_path` make_search_path() ignores for not being
// absolute, so the caller can say so.
std::vector<std::string> relative_entries(std::string_view env_path);

}  // namespace envd::plugin
