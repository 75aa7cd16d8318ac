#include "plugin/module_files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "envd/files.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// Who may own what envd loads code from: root or the user running envd.
// Anyone else could replace it (a module renamed into an owned directory),
// and envd would run their code as this user.
// "owned by uid N, which is ..." for another owner, else "".
std::string foreign_owner(uid_t owner) {
  const uid_t euid = ::geteuid();
  if (owner == 0 || owner == euid) return {};
  return "owned by uid " + std::to_string(owner) +
         ", which is neither root nor the current user (uid " + std::to_string(euid) + ")";
}

// The permission problem of a module's directory, or "".
std::string dir_refusal_of(const fs::path& dir, const struct stat& st) {
  if ((st.st_mode & S_IWOTH) != 0) return "directory " + quoted(dir) + " is world-writable";
  std::string owner = foreign_owner(st.st_uid);
  return owner.empty() ? owner : "directory " + quoted(dir) + " is " + owner;
}

// The permission problem of a module file, or "".
std::string file_refusal(const fs::path& path, const struct stat& st) {
  if ((st.st_mode & S_IWOTH) != 0) {
    return "file is world-writable (mode " + octal_mode(st.st_mode) + "); run chmod o-w " +
           quoted(path) + " if you trust it";
  }
  std::string owner = foreign_owner(st.st_uid);
  return owner.empty() ? owner : "file is " + owner;
}

// Why a "*.so" entry that stat() could not show as a regular file is not a
// module, or "" when it is gone. `stat_errno` is stat()'s errno if it failed.
std::string odd_entry(const fs::path& path, const struct stat& st, int stat_errno) {
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0) return {};
  if (S_ISLNK(link.st_mode) && (stat_errno == ENOENT || stat_errno == ELOOP)) {
    std::error_code ec;
    fs::path target = fs::read_symlink(path, ec);
    return stat_errno == ELOOP ? "it is a symbolic link that loops"
                               : "it is a dangling symbolic link (to " + quoted(target) + ")";
  }
  if (S_ISLNK(link.st_mode) && stat_errno != 0) {
    return std::string("its symbolic link cannot be followed: ") + std::strerror(stat_errno);
  }
  if (stat_errno != 0) return std::string("it cannot be examined: ") + std::strerror(stat_errno);
  const char* what = sdk::file_kind(st.st_mode);
  return std::string("it is ") + what + ", not a module file";
}

}  // namespace

std::vector<ModuleFile> list_module_files(const fs::path& dir) {
  std::vector<ModuleFile> files;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    // A directory on the search path that envd may not list (it exists: the
    // search path holds no other) would hide its modules without a word:
    // said as the refusal of an entry that names the directory.
    if (ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory) {
      files.push_back(ModuleFile{dir, dir, "the directory cannot be listed: " + ec.message()});
    }
    return files;
  }

  // The directory resolved once: an entry that is not a symbolic link then
  // resolves to it plus its name, without a readlink() per component of
  // the path for every module (a dozen system calls each, on every command
  // that loads a driver).
  std::error_code dir_ec;
  const fs::path dir_canonical = fs::canonical(dir, dir_ec);

  std::string dir_refusal;
  struct stat dir_st {};
  if (::stat(dir.c_str(), &dir_st) == 0) dir_refusal = dir_refusal_of(dir, dir_st);

  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& path = it->path();
    const std::string name = path.filename().string();
    if (name.size() <= 3 || !name.ends_with(".so")) continue;
    struct stat st {};
    const int stat_errno = ::stat(path.c_str(), &st) == 0 ? 0 : errno;
    if (stat_errno != 0 || !S_ISREG(st.st_mode)) {
      // Named as a module but not one: said, not dropped, so that a module
      // that went missing (a dangling link after an upgrade) is noticed.
      std::string odd = odd_entry(path, st, stat_errno);
      if (odd.empty()) continue;  // vanished meanwhile
      files.push_back(ModuleFile{path, path, std::move(odd)});
      continue;
    }
    std::error_code canonical_ec;
    const bool link = it->is_symlink(canonical_ec) || canonical_ec;
    fs::path canonical =
        !link && !dir_ec ? dir_canonical / path.filename() : fs::canonical(path, canonical_ec);
    if (canonical_ec) continue;  // vanished meanwhile
    ModuleFile file;
    file.path = path;
    file.refusal = dir_refusal.empty() ? file_refusal(path, st) : dir_refusal;
    // A link leads to the file in another directory: anyone who can write
    // to that one can replace the module as well.
    if (link && file.refusal.empty()) {
      struct stat target_dir {};
      const fs::path where = canonical.parent_path();
      if (::stat(where.c_str(), &target_dir) == 0 && (target_dir.st_mode & S_IWOTH) != 0) {
        file.refusal =
            "it links to " + quoted(canonical) + ", in world-writable directory " + quoted(where);
      } else if (std::string owner = foreign_owner(target_dir.st_uid); !owner.empty()) {
        file.refusal =
            "it links to " + quoted(canonical) + ", in directory " + quoted(where) + " " + owner;
      }
    }
    file.canonical = std::move(canonical);
    files.push_back(std::move(file));
  }
  std::sort(files.begin(), files.end(), [](const ModuleFile& a, const ModuleFile& b) {
    return a.path.filename() < b.path.filename();
  });
  return files;
}

}  // namespace envd::plugin
