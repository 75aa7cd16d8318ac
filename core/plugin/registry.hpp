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
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "envd/plugin_abi.h"
#include "envd/result.hpp"
#include "plugin/driver.hpp"

namespace envd::plugin {

enum class Kind { builder, runner };
const char* to_string(Kind kind);  // "builder" / "runner"
const char* maturity_name(int32_t maturity);  // "stable" / "experimental" / "unknown"

// What is known about one module file, loaded or not.
struct ModuleInfo {
  std::filesystem::path path;  // absolute; "<built-in>" for in-memory drivers
  bool ok = false;
  std::string reason;          // why it was refused, when !ok
  // Valid when the descriptor could be read (ok, or refused after reading it):
  std::string type;
  Kind kind = Kind::builder;
  std::string version;
  std::string description;
  int32_t maturity = 0;
  uint16_t abi_major = 0;
  uint16_t abi_minor = 0;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(Registry&&) noexcept;
  Registry& operator=(Registry&&) noexcept;

  // Discovers the modules on `search_path` (in order; first match per type
  // wins), reading and refreshing the manifest cache at `cache_file` (an empty
  // path disables the cache).
  static Registry discover(const std::vector<std::filesystem::path>& search_path,
                           const std::filesystem::path& cache_file);

  // Registers a driver from a descriptor already in this process (tests, or
  // drivers linked into the binary). It takes precedence over modules.
  Status add_builtin(const envd_plugin_descriptor* descriptor);

  // Every module seen, in search order, refused ones included.
  const std::vector<ModuleInfo>& modules() const;

  // Types of usable drivers of `kind`, sorted.
  std::vector<std::string> types(Kind kind) const;

  // Loads (once) the module providing `type` and returns its driver. Errors say
  // whether the type is unknown (listing the available ones) or refused (and why).
  Result<BuilderDriver> builder(std::string_view type);
  Result<RunnerDriver> runner(std::string_view type);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace envd::plugin
