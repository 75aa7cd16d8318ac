// What the host (envd) offers a driver while it works: progress lines for the
// user, diagnostics, and whether the user asked to stop (Ctrl-C).
//
//   envd::sdk::report_progress("pulling moby/buildkit:v0.19.0: 12.0 MiB of 40.1 MiB");
//   if (envd::sdk::cancelled()) return envd::sdk::cancelled_error("bootstrap of " + name);
//
// These reach the host through the C table of <envd/plugin_abi.h>
// (envd_host_api, ABI 1.2) that the core hands each module once; before that,
// or under a host that offers none, progress and logs go nowhere and
// cancelled() is false.
//
// Cancellation is cooperative: a driver checks cancelled() in every wait (the
// SDK's Docker Engine client and process helpers already do, at least every
// 100 ms), stops, undoes what it half did, and returns cancelled_error().
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "envd/plugin_abi.h"
#include "envd/result.hpp"

namespace envd::sdk {

// One line of progress (no trailing newline); the host decides how to show
// it. A driver never writes to stdout or stderr itself.
void report_progress(std::string_view line);

enum class LogLevel {
  debug = ENVD_LOG_DEBUG,
  info = ENVD_LOG_INFO,
  warning = ENVD_LOG_WARNING,
  error = ENVD_LOG_ERROR
};

// A diagnostic line; debug and info are shown only when the user asks
// (ENVD_DEBUG=1), warnings and errors always.
void log(LogLevel level, std::string_view line);

// True once the user asked to stop.
bool cancelled();

// Errc::cancelled "<what> cancelled", the error a driver returns once it has
// stopped because cancelled() said so.
Error cancelled_error(std::string_view what);

// While one lives in a thread, cancelled() is false in that thread: for the
// cleanup a driver does after it stopped (removing the container it created),
// which must not itself be cut short. Not copyable; nests.
class IgnoreCancellation {
 public:
  IgnoreCancellation();
  ~IgnoreCancellation();
  IgnoreCancellation(const IgnoreCancellation&) = delete;
  IgnoreCancellation& operator=(const IgnoreCancellation&) = delete;
};

// Sleeps for `duration`, waking within 50 ms of a cancellation. Returns false
// if cancelled (before or during the sleep).
bool sleep_unless_cancelled(std::chrono::milliseconds duration);

}  // namespace envd::sdk
