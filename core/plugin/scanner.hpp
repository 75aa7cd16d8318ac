// Internal to core/plugin: describing a module file without risking the core.
//
// scan_module() reads the module's descriptor in a forked child: the child
// loads the file (load_module), calls the entry, validates the descriptor
// (describe_descriptor) and writes the facts as JSON to a pipe. The parent
// waits up to `timeout`; a child that does not answer in time is killed. So a
// module that crashes, hangs, calls exit() or prints while being loaded cannot
// take envd down or garble its output; it is only refused, with the reason.
//
// The child's stdin, stdout and stderr are /dev/null, its core dumps are
// disabled, and the signals a crash raises are reset to their default action.
// fork() copies only the calling thread: call this before starting threads.
#pragma once

#include <chrono>
#include <filesystem>

#include "plugin/registry.hpp"

namespace envd::plugin {

// The facts of the module at `path` (absolute); ModuleInfo::path is left empty.
// Never fails as a function: every problem is a refusal in the result.
ModuleInfo scan_module(const std::filesystem::path& path, std::chrono::milliseconds timeout);

}  // namespace envd::plugin
