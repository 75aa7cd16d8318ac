#include "config_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>

#include <cstring>
#include <memory>

namespace envd::plugins::docker_container {
namespace {

// libarchive 3's soname, which the envd package depends on.
constexpr const char* kLibArchiveSoname = "libarchive.so.13";
static_assert(ARCHIVE_VERSION_NUMBER >= 3000000 && ARCHIVE_VERSION_NUMBER < 4000000,
              "libarchive 3 is libarchive.so.13");

// The functions config_tar() calls, each with the name and type archive.h
// declares.
#define ENVD_CONFIG_ARCHIVE_FUNCTIONS(X)     \
  X(archive_error_string)                    \
  X(archive_write_new)                       \
  X(archive_write_free)                      \
  X(archive_write_set_format_pax_restricted) \
  X(archive_write_open)                      \
  X(archive_write_header)                    \
  X(archive_write_data)                      \
  X(archive_write_close)                     \
  X(archive_entry_new)                       \
  X(archive_entry_free)                      \
  X(archive_entry_clear)                     \
  X(archive_entry_set_pathname)              \
  X(archive_entry_set_filetype)              \
  X(archive_entry_set_perm)                  \
  X(archive_entry_set_size)

struct LibArchive {
// `name` is the member's name: it cannot be parenthesized.
// NOLINTNEXTLINE(bugprone-macro-parentheses)
#define ENVD_CONFIG_ARCHIVE_MEMBER(name) decltype(&::name) name = nullptr;
  ENVD_CONFIG_ARCHIVE_FUNCTIONS(ENVD_CONFIG_ARCHIVE_MEMBER)
#undef ENVD_CONFIG_ARCHIVE_MEMBER
};

// Opens libarchive (never closed; RTLD_LOCAL: nothing else binds to it by
// accident) and finds every function.
Result<const LibArchive*> open_libarchive() {
  auto fail = [](const std::string& reason) {
    return Error(Errc::internal, std::string("cannot make the config archive: cannot load ") +
                                     kLibArchiveSoname + ": " + reason + " (install libarchive13)");
  };
  void* handle = ::dlopen(kLibArchiveSoname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = ::dlerror();
    return fail(reason != nullptr ? reason : "dlopen failed");
  }
  static LibArchive table;
  // Object pointer to function pointer, as POSIX allows for dlsym's result.
#define ENVD_CONFIG_ARCHIVE_FIND(name)                            \
  if (void* symbol = ::dlsym(handle, #name); symbol != nullptr) { \
    std::memcpy(&table.name, &symbol, sizeof table.name);         \
  } else {                                                        \
    return fail(std::string("it has no function ") + #name);      \
  }
  ENVD_CONFIG_ARCHIVE_FUNCTIONS(ENVD_CONFIG_ARCHIVE_FIND)
#undef ENVD_CONFIG_ARCHIVE_FIND
  return &table;
}

// The table, opened on the first call; later calls return the same.
Result<const LibArchive*> libarchive() {
  static const Result<const LibArchive*> opened = open_libarchive();
  return opened;
}

la_ssize_t append_to_string(archive* /*a*/, void* out, const void* buffer, size_t length) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

}  // namespace

Result<std::string> config_tar(const std::string& dir, const std::string& file,
                               const std::string& text) {
  auto loaded = libarchive();
  if (!loaded) return loaded.error();
  const LibArchive& la = **loaded;
  std::string out;
  std::unique_ptr<archive, decltype(la.archive_write_free)> a(la.archive_write_new(),
                                                              la.archive_write_free);
  std::unique_ptr<archive_entry, decltype(la.archive_entry_free)> entry(la.archive_entry_new(),
                                                                        la.archive_entry_free);
  if (!a || !entry) return Error(Errc::internal, "cannot make the config archive: out of memory");
  auto ok = [](int rc) { return rc == ARCHIVE_OK; };
  bool good = ok(la.archive_write_set_format_pax_restricted(a.get())) &&
              ok(la.archive_write_open(a.get(), &out, nullptr, append_to_string, nullptr));
  auto add = [&](const std::string& path, const std::string* content) {
    la.archive_entry_clear(entry.get());
    la.archive_entry_set_pathname(entry.get(), path.c_str());
    la.archive_entry_set_filetype(entry.get(), content ? AE_IFREG : AE_IFDIR);
    la.archive_entry_set_perm(entry.get(), content ? 0444 : 0755);
    la.archive_entry_set_size(entry.get(), content ? static_cast<la_int64_t>(content->size()) : 0);
    if (!ok(la.archive_write_header(a.get(), entry.get()))) return false;
    return !content || la.archive_write_data(a.get(), content->data(), content->size()) ==
                           static_cast<la_ssize_t>(content->size());
  };
  good = good && add(dir + "/", nullptr) && add(dir + "/" + file, &text) &&
         ok(la.archive_write_close(a.get()));
  if (!good) {
    const char* why = la.archive_error_string(a.get());
    return Error(Errc::internal,
                 std::string("cannot make the config archive: ") + (why ? why : "unknown error"));
  }
  return out;
}

}  // namespace envd::plugins::docker_container
