// The services the core offers driver modules (plugin_abi.h, envd_host_api,
// ABI 1.2): progress lines for the user, diagnostics, and cancellation. The
// registry hands the table to each module once, when it loads it; the core
// binds its own copy of the SDK to the same table, so SDK code running in the
// core (the Docker Engine client of push and load) sees the same cancellation.
#pragma once

#include <atomic>
#include <cstdio>
#include <string>

#include "envd/plugin_abi.h"

namespace envd::plugin {

// One per process, living as long as any module may call it (the modules keep
// the pointer for the life of the process). Thread-safe.
class Host {
 public:
  // Progress and logs go to `err` (stderr). ENVD_DEBUG=1 shows debug and info
  // logs too.
  explicit Host(std::FILE* err = stderr);
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // The table to hand to modules.
  const envd_host_api* api() const { return &api_; }

  // Progress lines are not shown while quiet (--progress quiet).
  void set_quiet(bool quiet) { quiet_.store(quiet); }

  // A progress line of the core's own, shown (or not) as a module's are.
  void report(const std::string& line) { progress(this, line.c_str()); }

  // The user asked to stop: from now on every module's cancelled() is true.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  static void progress(void* context, const char* line);
  static void log(void* context, int32_t level, const char* line);
  static int32_t is_cancelled(void* context);

  std::FILE* err_;
  bool debug_;
  std::atomic<bool> quiet_{false};
  std::atomic<bool> cancelled_{false};
  envd_host_api api_{};
};

// The process's Host: made on first use and never destroyed, since modules
// may keep threads that call it after main() returns (plugin_abi.h promises
// the table for the life of the process).
Host& process_host();

}  // namespace envd::plugin
