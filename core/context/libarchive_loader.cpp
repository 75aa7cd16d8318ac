#include "context/libarchive_loader.hpp"

#include <dlfcn.h>

#include <cstring>
#include <string>

namespace envd::context {
namespace {

Error load_error(const std::string& reason) {
  return Error(Errc::internal, std::string("cannot load ") + kLibArchiveSoname + ": " + reason +
                                   " (install libarchive13)");
}

Result<const LibArchive*> open_libarchive() {
  // RTLD_LOCAL: nothing else in the process binds to it by accident.
  void* handle = ::dlopen(kLibArchiveSoname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = ::dlerror();
    return load_error(reason != nullptr ? reason : "dlopen failed");
  }
  static LibArchive table;
  // Object pointer to function pointer, as POSIX allows for dlsym's result.
#define ENVD_LIBARCHIVE_FIND(name)                                 \
  if (void* symbol = ::dlsym(handle, #name); symbol != nullptr) {  \
    std::memcpy(&table.name, &symbol, sizeof table.name);          \
  } else {                                                         \
    return load_error(std::string("it has no function ") + #name); \
  }
  ENVD_LIBARCHIVE_FUNCTIONS(ENVD_LIBARCHIVE_FIND)
#undef ENVD_LIBARCHIVE_FIND
  return &table;
}

}  // namespace

Result<const LibArchive*> libarchive() {
  static const Result<const LibArchive*> opened = open_libarchive();
  return opened;
}

}  // namespace envd::context
