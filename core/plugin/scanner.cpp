#include "plugin/scanner.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <boost/json.hpp>
#include <string>

#include "envd/host.hpp"
#include "envd/process.hpp"
#include "plugin/descriptor.hpp"
#include "plugin/module_loader.hpp"
#include "util/json.hpp"
#include "util/paths.hpp"

#if !defined(ENVD_SCAN_HELPER_RELATIVE) || !defined(ENVD_INSTALL_SCAN_HELPER)
#error "ENVD_SCAN_HELPER_RELATIVE and ENVD_INSTALL_SCAN_HELPER must be defined by the build"
#endif

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxScanAnswer = size_t{1} << 20;

ModuleInfo refused(std::string reason) {
  ModuleInfo info;
  info.reason = std::move(reason);
  return info;
}

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace

namespace {

// Where the helper is looked for first: beside this envd (an installation
// moved elsewhere, the build tree); "" when envd cannot tell where it is.
fs::path relocated_scan_helper() {
  auto prefix = util::install_prefix();
  return prefix ? *prefix / ENVD_SCAN_HELPER_RELATIVE : fs::path();
}

}  // namespace

fs::path scan_helper() {
  fs::path beside = relocated_scan_helper();
  if (!beside.empty() && ::access(beside.c_str(), X_OK) == 0) return beside;
  return ENVD_INSTALL_SCAN_HELPER;
}

std::string scanner_identity() {
  std::string identity = "envd " ENVD_VERSION;
  struct stat st {};
  if (::stat(scan_helper().c_str(), &st) == 0) {
    identity += fmt::format(", helper {} bytes, mtime {}.{:09}", st.st_size, st.st_mtim.tv_sec,
                            st.st_mtim.tv_nsec);
  }
  return identity;
}

namespace {

// Refusals that depend on the module's surroundings, not on its bytes: a
// file envd may not read (its owner, group or mode may change), a library
// the dynamic loader cannot find or a symbol it cannot resolve (the library
// installed later, another LD_LIBRARY_PATH). The fix a user makes leaves the
// module's file as it was, so such a verdict is not remembered.
ModuleInfo not_remembered(ModuleInfo info) {
  if (!info.ok && (info.reason.rfind("cannot be read: ", 0) == 0 ||
                   info.reason.rfind("cannot be loaded: ", 0) == 0)) {
    info.cacheable = false;
  }
  return info;
}

}  // namespace

ModuleInfo scan_module(const fs::path& path, std::chrono::milliseconds timeout) {
  // Files that cannot be ELF are refused without starting anything.
  if (auto st = check_elf_header(path); !st) {
    return not_remembered(refused(st.error().message()));
  }

  sdk::ProcessOptions options;
  options.argv = {scan_helper().string(), path.string(), std::to_string(::getpid())};
  options.timeout = timeout;
  // A description is a few KiB: a module that floods the answer's pipe as it
  // loads is stopped rather than read until the timeout.
  options.max_output = kMaxScanAnswer;
  // The scan is bounded by its timeout; a scan cut short by Ctrl-C would be
  // remembered in the manifest cache as the module's refusal.
  sdk::IgnoreCancellation bounded;
  auto scan = sdk::run_process(options);
  if (!scan) {
    // Nothing about the module: the helper is missing or the system is out
    // of processes. Not remembered, so a reinstalled helper is used next time.
    const fs::path beside = relocated_scan_helper();
    std::string tried = beside.empty() || beside == options.argv.front()
                            ? std::string()
                            : " (nor can '" + beside.string() + "')";
    ModuleInfo info = refused("cannot be scanned: " + scan.error().message() + tried);
    info.cacheable = false;
    return info;
  }
  if (scan->output_exceeded) {
    return refused("sent more than " + std::to_string(kMaxScanAnswer >> 20) +
                   " MiB as it loaded, more than any module's description (stopped there)");
  }
  if (scan->timed_out) {
    return refused("timed out while loading (killed after " + duration_text(timeout) + ")");
  }
  if (scan->term_signal != 0) {
    return refused("crashed while loading (signal " + std::to_string(scan->term_signal) + ")");
  }
  if (scan->exit_code != 0) {
    return refused("exited with status " + std::to_string(scan->exit_code) + " while loading");
  }
  if (scan->out.empty()) return refused("exited while loading without describing itself");
  auto parsed = util::parse_json(scan->out, "scan result");
  if (parsed && parsed->is_object()) {
    if (auto facts = facts_from_json(parsed->get_object())) return not_remembered(*facts);
  }
  return refused("cannot be scanned: the scanning process sent an unreadable answer");
}

}  // namespace envd::plugin
