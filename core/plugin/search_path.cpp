#include "plugin/search_path.hpp"

#include <cstdlib>
#include <set>
#include <string>
#include <system_error>

#include "util/paths.hpp"

#ifndef ENVD_INSTALL_PLUGIN_DIR
#error "ENVD_INSTALL_PLUGIN_DIR must be defined by the build"
#endif

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;

class PathList {
 public:
  void add(const fs::path& dir) {
    if (dir.empty()) return;
    std::error_code ec;
    fs::path canonical = fs::canonical(dir, ec);
    if (ec || !fs::is_directory(canonical, ec)) return;
    if (seen_.insert(canonical.native()).second) dirs_.push_back(std::move(canonical));
  }
  std::vector<fs::path> release() { return std::move(dirs_); }

 private:
  std::vector<fs::path> dirs_;
  std::set<std::string> seen_;
};

}  // namespace

std::vector<fs::path> make_search_path(const SearchPathSources& sources) {
  PathList list;
  std::string_view rest = sources.env_path;
  while (!rest.empty()) {
    size_t colon = rest.find(':');
    std::string_view entry = rest.substr(0, colon);
    if (!entry.empty() && entry.front() == '/') list.add(fs::path(entry));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (!sources.data_dir.empty()) list.add(sources.data_dir / "plugins");
  if (!sources.prefix.empty()) list.add(plugin_dir_under(sources.prefix));
  list.add(sources.install_dir);
  return list.release();
}

std::vector<std::string> relative_entries(std::string_view env_path) {
  std::vector<std::string> out;
  while (!env_path.empty()) {
    size_t colon = env_path.find(':');
    std::string_view entry = env_path.substr(0, colon);
    if (!entry.empty() && entry.front() != '/') out.emplace_back(entry);
    if (colon == std::string_view::npos) break;
    env_path.remove_prefix(colon + 1);
  }
  return out;
}

std::vector<fs::path> default_search_path() {
  SearchPathSources sources;
  if (const char* env = std::getenv("ENVD_PLUGIN_PATH")) sources.env_path = env;
  // Either lookup can fail (no HOME, no /proc); the other directories still count.
  if (auto data = util::data_dir()) sources.data_dir = *data;
  if (auto prefix = util::install_prefix()) sources.prefix = *prefix;
  sources.install_dir = ENVD_INSTALL_PLUGIN_DIR;
  return make_search_path(sources);
}

fs::path default_manifest_cache() {
  auto dir = util::cache_dir();
  if (!dir) return {};
  return *dir / "plugin-manifests.json";
}

fs::path plugin_dir_under(const fs::path& prefix) { return prefix / ENVD_PLUGIN_DIR_RELATIVE; }

}  // namespace envd::plugin
