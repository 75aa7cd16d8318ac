// Progress of long driver work (pulling an image, waiting for a daemon to
// start), shown by the host to the user.
//
//   envd::sdk::report_progress("pulling moby/buildkit:v0.19.0: 12.0 MiB of 40.1 MiB");
//
// A driver reports one line at a time: a complete, human-readable sentence
// fragment without a trailing newline. The host decides how to show it (envd
// prints it to standard error, redrawn on a terminal, or not at all with
// --progress quiet); a driver never writes to stdout or stderr itself.
//
// Thread-safety: report_progress may be called from any thread; lines are
// passed to the handler one at a time.
#pragma once

#include <string_view>

namespace envd::sdk {

// Passes `line` to the host's handler; a no-op when the host installed none.
void report_progress(std::string_view line);

// For the host (the envd core), not for drivers: receives every reported
// line. `line` is valid for the duration of the call. Passing nullptr removes
// the handler. Handlers must not call report_progress.
using ProgressHandler = void (*)(std::string_view line, void* user);
void set_progress_handler(ProgressHandler handler, void* user);

}  // namespace envd::sdk
