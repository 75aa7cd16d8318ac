#include "plugin/module_loader.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <boost/dll/import.hpp>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/text.hpp"
#include "util/unique_fd.hpp"

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

// What a module or the loader said, for a refusal's reason: one line of
// clean text, bounded (a reason is shown in `envd plugin ls`, crosses from
// the scanning process as JSON and is cached, each of which takes only that).
std::string said(std::string text) { return util::printable(sdk::one_line(std::move(text)), 400); }

// The machine this envd runs on, as an ELF header names it.
constexpr std::uint16_t kHostMachine =
#if defined(__x86_64__)
    EM_X86_64;
#elif defined(__aarch64__)
    EM_AARCH64;
#elif defined(__i386__)
    EM_386;
#elif defined(__arm__)
    EM_ARM;
#elif defined(__riscv)
    EM_RISCV;
#elif defined(__powerpc64__)
    EM_PPC64;
#elif defined(__s390x__)
    EM_S390;
#else
    EM_NONE;  // unknown: not checked
#endif

// A name for an ELF machine, as `file` and Debian's architectures say it.
std::string machine_name(std::uint16_t machine) {
  switch (machine) {
    case EM_X86_64:
      return "x86-64 (amd64)";
    case EM_AARCH64:
      return "aarch64 (arm64)";
    case EM_386:
      return "i386";
    case EM_ARM:
      return "32-bit ARM (armhf)";
    case EM_RISCV:
      return "RISC-V";
    case EM_PPC64:
      return "64-bit PowerPC (ppc64el)";
    case EM_S390:
      return "s390x";
    default:
      return "ELF machine " + std::to_string(machine);
  }
}

// A file cut short (an unfinished copy or download) is mapped by dlopen as
// far as it goes, and the first touch beyond its end is SIGBUS: so every
// part the ELF headers place in the file must lie within it. For this
// machine's class and byte order (check_elf_header has checked both), on
// the descriptor check_elf_header read the identification from.
Status check_elf_extent(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return refusal(std::string("cannot be read: ") + std::strerror(errno));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  auto truncated = [size](std::uint64_t needed) {
    return refusal("is truncated: it is " + std::to_string(size) +
                   " bytes, and its ELF headers place data up to byte " + std::to_string(needed) +
                   " (an unfinished copy?)");
  };
  ElfW(Ehdr) ehdr{};
  if (::pread(fd, &ehdr, sizeof ehdr, 0) != static_cast<ssize_t>(sizeof ehdr)) {
    return truncated(sizeof ehdr);
  }
  const std::uint64_t ph_end =
      std::uint64_t{ehdr.e_phoff} + std::uint64_t{ehdr.e_phnum} * ehdr.e_phentsize;
  if (ph_end > size) return truncated(ph_end);
  if (ehdr.e_shoff != 0) {
    const std::uint64_t sh_end =
        std::uint64_t{ehdr.e_shoff} + std::uint64_t{ehdr.e_shnum} * ehdr.e_shentsize;
    if (sh_end > size) return truncated(sh_end);
  }
  if (ehdr.e_phentsize != sizeof(ElfW(Phdr))) return {};  // dlopen says what is wrong
  for (unsigned i = 0; i < ehdr.e_phnum; ++i) {
    ElfW(Phdr) phdr{};
    const auto at = static_cast<off_t>(ehdr.e_phoff + std::uint64_t{i} * sizeof phdr);
    if (::pread(fd, &phdr, sizeof phdr, at) != static_cast<ssize_t>(sizeof phdr)) {
      return truncated(ph_end);
    }
    const std::uint64_t end = std::uint64_t{phdr.p_offset} + phdr.p_filesz;
    if (phdr.p_type == PT_LOAD && end > size) return truncated(end);
  }
  return {};
}

}  // namespace

Status check_elf_header(const fs::path& path) {
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return refusal(std::string("cannot be read: ") + std::strerror(errno));
  // e_ident, e_type and e_machine lie at the same offsets in both classes.
  unsigned char header[EI_NIDENT + 4] = {};
  ssize_t n = ::read(fd.get(), header, sizeof header);
  if (n < 0) return refusal(std::string("cannot be read: ") + std::strerror(errno));
  if (n != sizeof header || std::memcmp(header, ELFMAG, SELFMAG) != 0) {
    return refusal("not an ELF shared library");
  }
  // glibc answers a module of another architecture with "cannot open shared
  // object file: No such file or directory", about a file that is there.
  if ((header[EI_CLASS] != ELFCLASS32 && header[EI_CLASS] != ELFCLASS64) ||
      (header[EI_DATA] != ELFDATA2LSB && header[EI_DATA] != ELFDATA2MSB)) {
    return refusal("not an ELF shared library (its header is damaged)");
  }
  const int host_class = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
  if (header[EI_CLASS] != host_class) {
    return refusal(std::string("built for a ") + (header[EI_CLASS] == ELFCLASS32 ? "32" : "64") +
                   "-bit system; this envd is " + (host_class == ELFCLASS64 ? "64" : "32") +
                   "-bit");
  }
  const bool little = header[EI_DATA] == ELFDATA2LSB;
  const bool host_little = std::endian::native == std::endian::little;
  if (little != host_little) {
    return refusal(std::string("built for a ") + (little ? "little" : "big") +
                   "-endian system; this envd runs on a " + (host_little ? "little" : "big") +
                   "-endian one");
  }
  const std::uint16_t machine =
      little ? static_cast<std::uint16_t>(header[EI_NIDENT + 2] | header[EI_NIDENT + 3] << 8)
             : static_cast<std::uint16_t>(header[EI_NIDENT + 2] << 8 | header[EI_NIDENT + 3]);
  if (kHostMachine != EM_NONE && machine != kHostMachine) {
    return refusal("built for " + machine_name(machine) + "; this envd runs on " +
                   machine_name(kHostMachine));
  }
  return check_elf_extent(fd.get());
}

Result<const envd_plugin_descriptor*> load_module(const fs::path& path) {
  std::lock_guard lock(loaded_modules_mutex());
  auto& modules = loaded_modules();
  if (auto it = modules.find(path.native()); it != modules.end()) return it->second.descriptor;

  dll::shared_library library;
  try {
    library.load(path, dll::load_mode::rtld_now | dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refusal("cannot be loaded: " + said(dlerror_text(e.what(), path)));
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
                   said(dlerror_text(e.what(), path)));
  }

  const envd_plugin_descriptor* descriptor = nullptr;
  std::optional<Error> failure;
  try {
    descriptor = (*entry)();
  } catch (const std::exception& e) {
    failure = refusal("entry threw an exception: " + said(e.what()));
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
