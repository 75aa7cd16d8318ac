#include "plugin/module_loader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/dll/import.hpp>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;
namespace dll = boost::dll;

using EntryFn = const envd_plugin_descriptor*();
// The callable import_symbol returns; it holds the shared_library (and so the
// mapping) for as long as it lives. Spelled via decltype because its type
// changed between Boost releases.
using Entry = decltype(dll::import_symbol<EntryFn>(std::declval<dll::shared_library>(), ""));

struct LoadedModule {
  Entry entry;
  const envd_plugin_descriptor* descriptor;
};

// Never destroyed: destroying it at exit would dlclose the modules and run their
// static destructors while other objects may still point into them.
std::map<std::string, LoadedModule>& loaded_modules() {
  static auto* modules = new std::map<std::string, LoadedModule>();
  return *modules;
}

std::mutex& loaded_modules_mutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}

// Boost.DLL's throwing overload carries dlerror() inside its message:
// "...load() failed (dlerror system message: <text>): <errc text>". Return
// <text> without the leading "<path>: " glibc adds, or the whole message.
std::string dlerror_text(const std::string& what, const fs::path& path) {
  static constexpr std::string_view kMarker = "(dlerror system message: ";
  size_t begin = what.find(kMarker);
  size_t end = what.rfind(')');
  if (begin == std::string::npos || end == std::string::npos || end < begin + kMarker.size()) {
    return what;
  }
  std::string text = what.substr(begin + kMarker.size(), end - begin - kMarker.size());
  std::string prefix = path.native() + ": ";
  if (text.compare(0, prefix.size(), prefix) == 0) text.erase(0, prefix.size());
  return text;
}

Error refusal(std::string reason) { return Error(Errc::unavailable, std::move(reason)); }

}  // namespace

Status check_elf_header(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return refusal(std::string("cannot be read: ") + std::strerror(errno));
  unsigned char magic[4] = {};
  ssize_t n = ::read(fd, magic, sizeof magic);
  int err = errno;
  ::close(fd);
  if (n < 0) return refusal(std::string("cannot be read: ") + std::strerror(err));
  if (n != sizeof magic || magic[0] != 0x7f || magic[1] != 'E' || magic[2] != 'L' ||
      magic[3] != 'F') {
    return refusal("not an ELF shared library");
  }
  return {};
}

Result<const envd_plugin_descriptor*> load_module(const fs::path& path) {
  std::lock_guard lock(loaded_modules_mutex());
  auto& modules = loaded_modules();
  if (auto it = modules.find(path.native()); it != modules.end()) return it->second.descriptor;

  dll::shared_library library;
  try {
    library.load(path, dll::load_mode::rtld_now | dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refusal("cannot be loaded: " + dlerror_text(e.what(), path));
  }
  if (!library.has(ENVD_PLUGIN_ENTRY_SYMBOL)) {
    // Its static constructors have run; keep it mapped like every other module.
    static auto* without_entry = new std::vector<dll::shared_library>();
    without_entry->push_back(std::move(library));
    return refusal("no entry symbol '" ENVD_PLUGIN_ENTRY_SYMBOL
                   "': it is not an envd plugin, or was built without ENVD_PLUGIN_EXPORT");
  }
  std::optional<Entry> entry;
  try {
    entry.emplace(dll::import_symbol<EntryFn>(std::move(library), ENVD_PLUGIN_ENTRY_SYMBOL));
  } catch (const std::exception& e) {
    return refusal("cannot resolve '" ENVD_PLUGIN_ENTRY_SYMBOL "': " +
                   dlerror_text(e.what(), path));
  }

  const envd_plugin_descriptor* descriptor = nullptr;
  std::optional<Error> failure;
  try {
    descriptor = (*entry)();
  } catch (const std::exception& e) {
    failure = refusal(std::string("entry threw an exception: ") + e.what());
  } catch (...) {
    failure = refusal("entry threw an exception of unknown type");
  }
  // Kept whatever the outcome: code of the module has run, so objects (an
  // exception, a registered handler) may refer to it. A failed load is not
  // remembered as a result, so a later call tries again.
  if (failure) {
    static auto* failed = new std::vector<Entry>();
    failed->push_back(std::move(*entry));
    return *failure;
  }
  modules.emplace(path.native(), LoadedModule{std::move(*entry), descriptor});
  return descriptor;
}

}  // namespace envd::plugin
