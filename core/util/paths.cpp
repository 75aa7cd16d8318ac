#include "util/paths.hpp"

#include <pwd.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

namespace envd::util {
namespace {

namespace fs = std::filesystem;

// A set, non-empty, absolute environment variable; relative values are ignored
// as the XDG specification requires.
const char* absolute_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || value[0] != '/') return nullptr;
  return value;
}

Result<fs::path> home_dir() {
  if (const char* home = absolute_env("HOME")) return fs::path(home);
  if (const passwd* pw = getpwuid(getuid());
      pw != nullptr && pw->pw_dir != nullptr && pw->pw_dir[0] == '/') {
    return fs::path(pw->pw_dir);
  }
  return Error(Errc::not_found,
               "cannot find the home directory: HOME is unset and the user has no passwd entry; "
               "set ENVD_CONFIG_DIR");
}

Result<fs::path> xdg_dir(const char* variable, const char* fallback) {
  if (const char* dir = absolute_env(variable)) return fs::path(dir) / "envd";
  auto home = home_dir();
  if (!home) return home.error();
  return *home / fallback / "envd";
}

}  // namespace

Result<fs::path> config_dir() {
  if (const char* dir = std::getenv("ENVD_CONFIG_DIR"); dir != nullptr && dir[0] != '\0') {
    std::error_code ec;
    fs::path path = fs::absolute(dir, ec);
    if (ec)
      return Error(Errc::invalid_argument,
                   "ENVD_CONFIG_DIR '" + std::string(dir) + "': " + ec.message());
    return path;
  }
  return xdg_dir("XDG_CONFIG_HOME", ".config");
}

Result<fs::path> cache_dir() { return xdg_dir("XDG_CACHE_HOME", ".cache"); }

Result<fs::path> data_dir() { return xdg_dir("XDG_DATA_HOME", ".local/share"); }

namespace {

// Where this program was started from: /proc/self/exe, else (a chroot or a
// container without /proc) the path execve was given (the auxiliary vector's
// AT_EXECFN; a relative one is relative to the directory envd started in,
// which it has not left when it first asks), resolved by realpath, which
// needs no /proc. Without it a relocated installation found no modules at
// all, and `plugin ls` listed none without a word.
Result<fs::path> own_file() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) return exe;
  // getauxval hands every entry over as an integer; this one is a pointer.
  const auto* started = reinterpret_cast<const char*>(  // NOLINT(performance-no-int-to-ptr)
      ::getauxval(AT_EXECFN));
  if (started != nullptr && *started != '\0') {
    if (char* real = ::realpath(started, nullptr)) {
      fs::path resolved(real);
      std::free(real);  // NOLINT(cppcoreguidelines-no-malloc): realpath's contract
      return resolved;
    }
  }
  return Error(Errc::internal, "cannot resolve /proc/self/exe: " + ec.message() +
                                   " (is /proc mounted?), nor the path envd was started as");
}

}  // namespace

Result<fs::path> executable_path() {
  auto own = own_file();
  if (!own) return own.error();
  const fs::path& exe = *own;
  // The helpers' directory, ENVD_HELPER_DIR under the prefix ("libexec/envd"),
  // is matched component by component from its end.
  const fs::path helper_dir = ENVD_HELPER_DIR;
  std::vector<fs::path> parts(helper_dir.begin(), helper_dir.end());
  fs::path prefix = exe.parent_path();
  for (auto part = parts.rbegin(); part != parts.rend(); ++part) {
    if (prefix.filename() != *part) return exe;
    prefix = prefix.parent_path();
  }
  return prefix / ENVD_BIN_DIR / "envd";
}

Result<fs::path> install_prefix() {
  auto exe = executable_path();
  if (!exe) return exe.error();
  return exe->parent_path().parent_path();
}

}  // namespace envd::util
