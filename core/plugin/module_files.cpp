#include "plugin/module_files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <system_error>

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// The permission problem of a module file, or "".
std::string file_refusal(const fs::path& path, const struct stat& st) {
  if ((st.st_mode & S_IWOTH) != 0) {
    return "file is world-writable (mode " + octal_mode(st.st_mode) + "); run chmod o-w " +
           quoted(path) + " if you trust it";
  }
  uid_t euid = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != euid) {
    return "file is owned by uid " + std::to_string(st.st_uid) +
           ", which is neither root nor the current user (uid " + std::to_string(euid) + ")";
  }
  return {};
}

}  // namespace

std::vector<ModuleFile> list_module_files(const fs::path& dir) {
  std::vector<ModuleFile> files;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return files;

  std::string dir_refusal;
  struct stat dir_st {};
  if (::stat(dir.c_str(), &dir_st) == 0 && (dir_st.st_mode & S_IWOTH) != 0) {
    dir_refusal = "directory " + quoted(dir) + " is world-writable";
  }

  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& path = it->path();
    const std::string name = path.filename().string();
    if (name.size() <= 3 || !name.ends_with(".so")) continue;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    std::error_code canonical_ec;
    fs::path canonical = fs::canonical(path, canonical_ec);
    if (canonical_ec) continue;  // vanished meanwhile
    ModuleFile file;
    file.path = path;
    file.canonical = std::move(canonical);
    file.refusal = dir_refusal.empty() ? file_refusal(path, st) : dir_refusal;
    files.push_back(std::move(file));
  }
  std::sort(files.begin(), files.end(), [](const ModuleFile& a, const ModuleFile& b) {
    return a.path.filename() < b.path.filename();
  });
  return files;
}

}  // namespace envd::plugin
