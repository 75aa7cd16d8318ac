#include "cli/client/library.hpp"

#include <dlfcn.h>
#include <pthread.h>

#include <csignal>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "cli/command_groups.hpp"
#include "util/paths.hpp"

namespace envd::cli {
namespace {

Error load_error(const std::filesystem::path& path, const std::string& reason) {
  return Error(Errc::internal, "cannot load '" + path.string() + "': " + reason +
                                   " (reinstall envd: the library ships beside it)");
}

Result<const ClientApi*> open_client(Invocation& invocation) {
  auto path = client_library_path();
  if (!path) return path.error();
  // RTLD_LOCAL: the library's own copies of the core's code stay its own.
  void* handle = ::dlopen(path->c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = ::dlerror();
    return load_error(*path, reason != nullptr ? reason : "dlopen failed");
  }
  using Entry = const ClientApi* (*)();
  void* symbol = ::dlsym(handle, kClientEntry);
  if (symbol == nullptr) {
    return load_error(*path, std::string("no entry '") + kClientEntry + "'");
  }
  Entry entry = nullptr;
  std::memcpy(&entry, &symbol, sizeof entry);  // object pointer to function pointer
  const ClientApi* api = entry();
  if (api == nullptr || api->version != kClientApiVersion || api->size != sizeof(ClientApi) ||
      api->invocation_size != sizeof(Invocation) || api->envd_version == nullptr ||
      std::strcmp(api->envd_version, ENVD_VERSION) != 0) {
    return load_error(
        *path, std::string("it is from another build of envd (this is envd ") + ENVD_VERSION + ")");
  }
  api->bind_host(invocation.host.api());
  return api;
}

// The thread opening the library ahead of its use; joined by client_api()
// or, at the latest, when the process exits.
struct Prefetch {
  std::thread thread;
  Prefetch() = default;
  Prefetch(const Prefetch&) = delete;
  Prefetch& operator=(const Prefetch&) = delete;
  ~Prefetch() { join(); }
  void join() {
    if (thread.joinable()) thread.join();
  }
};

Prefetch& prefetch() {
  static Prefetch instance;
  return instance;
}

}  // namespace

void prefetch_client_library(int argc, const char* const* argv) {
  if (asks_for_help(argc, argv)) return;  // help needs no library
  std::string_view command = command_words(argc, argv).command;
  if (command != "build" && command != "builder" && command != "prune") return;
  auto path = client_library_path();
  if (!path) return;  // client_api() reports it
  // The thread takes no signal: SIGINT and SIGTERM belong to the watcher the
  // commands set up, which expects every other thread to block them.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  prefetch().thread = std::thread([library = std::move(*path)] {
    // The handle is dropped: client_api()'s own dlopen finds the library
    // loaded and takes it from there (dlopen counts references).
    (void)::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

Result<std::filesystem::path> client_library_path() {
  auto exe = util::executable_path();
  if (!exe) return exe.error();
  return exe->parent_path().parent_path() / ENVD_CLIENT_RELATIVE;
}

Result<const ClientApi*> client_api(Invocation& invocation) {
  prefetch().join();
  // Modules are never unloaded, and neither is this: one open per process.
  static Result<const ClientApi*> opened = open_client(invocation);
  return opened;
}

}  // namespace envd::cli
