// Driver discovery and loading.
//
// Discovery walks the search path (search_path.hpp), stats every *.so, and
// describes each module from the manifest cache when the cache entry's path,
// size and mtime still match, so listing runs no module code. A stale or missing
// entry is refreshed by scanning the module in a child process (a module that
// crashes or hangs while loading cannot take envd down). A module is loaded into
// this process only when a command asks for its driver, and never unloaded.
//
// Broken modules (not a shared library, no entry symbol, wrong ABI, entry that
// fails or throws, world-writable file or directory, type provided earlier on
// the path) are kept in the list as refused, with the reason. Commands report
// them as one warning each; only asking for that driver makes them an error.
// Builders and runners are named apart: a builder and a runner may share a type.
//
// The rules, the cache format and every refusal reason are in
// docs/design/plugin-abi.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "envd/plugin_abi.h"
#include "envd/result.hpp"
#include "plugin/module_handles.hpp"

namespace envd::plugin {

enum class Kind { builder, runner };
const char* to_string(Kind kind);             // "builder" / "runner"
const char* maturity_name(int32_t maturity);  // "stable" / "experimental" / "unknown"

// What is known about one module file, loaded or not.
struct ModuleInfo {
  std::filesystem::path path;  // absolute; "<built-in>" for in-memory drivers
  bool ok = false;
  std::string reason;  // why it was refused, when !ok
  // Valid when the descriptor could be read (ok, or refused after reading it);
  // type is empty when it could not be, and then kind means nothing.
  std::string type;
  Kind kind = Kind::builder;
  std::string version;
  std::string description;
  int32_t maturity = 0;
  uint16_t abi_major = 0;
  uint16_t abi_minor = 0;
  // False when the refusal says nothing about the module (the scan helper
  // could not be started): it is not remembered in the manifest cache, so
  // the module is scanned again once the helper is back.
  bool cacheable = true;
};

// Tunables of discover(); the defaults are what envd uses.
struct DiscoverOptions {
  // How long the scanning child may take to describe one module before it is
  // killed and the module refused ("timed out while loading").
  std::chrono::milliseconds scan_timeout{5000};
  // The host services handed to each module when it is loaded for use (ABI
  // 1.2, set_host), and to built-ins when they are added; must outlive every
  // module (the life of the process). nullptr: none.
  const envd_host_api* host = nullptr;
};

// Not thread-safe: discover, register and look up drivers from one thread
// (typically before any other thread exists; scanning forks). The drivers it
// hands out may be used from any thread and outlive the Registry.
class Registry {
 public:
  Registry();  // empty: no modules, no search path
  ~Registry();
  Registry(Registry&&) noexcept;  // a moved-from Registry may only be assigned or destroyed
  Registry& operator=(Registry&&) noexcept;

  // Discovers the modules on `search_path` (in order; first match per type
  // wins), reading and refreshing the manifest cache at `cache_file` (an empty
  // path disables the cache). Prints nothing and never fails as a whole: each
  // problem is a refused module (see warnings()). A cache that cannot be read
  // or written is ignored.
  static Registry discover(const std::vector<std::filesystem::path>& search_path,
                           const std::filesystem::path& cache_file);
  static Registry discover(const std::vector<std::filesystem::path>& search_path,
                           const std::filesystem::path& cache_file, const DiscoverOptions& options);

  // Registers a driver from a descriptor already in this process (tests, or
  // drivers linked into the binary); it must stay valid for the life of the
  // process. It is validated like a module's (its path shows as "<built-in>")
  // and takes precedence over modules: a module of the same kind and type
  // becomes refused. Errors: Errc::invalid_argument "built-in driver refused:
  // <reason>" (it is then also listed, refused), Errc::already_exists if a
  // built-in of that kind and type exists.
  Status add_builtin(const envd_plugin_descriptor* descriptor);

  // Hands `host` (which must outlive every module) to the drivers in use and to
  // every one loaded or added from now on, as DiscoverOptions::host does.
  void set_host(const envd_host_api* host);

  // Every module seen, in search order (built-ins first), refused ones included.
  const std::vector<ModuleInfo>& modules() const;

  // One line per refused module, in module order, for commands to print:
  //   skipping plugin '/usr/lib/envd/plugins/x.so': needs ABI 2.0, this envd has 1.0
  std::vector<std::string> warnings() const;

  // The directories discover() searched, in order.
  const std::vector<std::filesystem::path>& search_path() const;

  // Types of usable drivers of `kind`, sorted.
  std::vector<std::string> types(Kind kind) const;

  // Loads (once per process) the module providing `type` and returns the
  // handle that calls its driver. Errors:
  //   Errc::not_found         unknown builder type 'x'; available: docker-container, tcp
  //   Errc::invalid_argument  'docker' is a runner, not a builder; available builders: ...
  //   Errc::unavailable       builder 'tcp' is not available: plugin '/p/envd-builder-tcp.so'
  //                           was refused: <reason>
  //                           (also when loading it into envd fails although its scan
  //                           succeeded; the error is remembered, not retried)
  // A refused module is matched by its descriptor's type or, when that could
  // not be read, by the file name convention envd-<kind>-<type>.so.
  Result<BuilderModule> builder(std::string_view type);
  Result<RunnerModule> runner(std::string_view type);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace envd::plugin
