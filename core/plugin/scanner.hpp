// Internal to core/plugin: describing a module file without risking the core.
//
// scan_module() reads the module's descriptor in a process of its own: it runs
// the helper envd-plugin-scan (scan_helper_main.cpp) through the SDK's process
// spawner (posix_spawn, so discovery may run while envd has threads), and the
// helper loads the file (load_module), calls the entry, validates the
// descriptor (describe_descriptor) and writes the facts as JSON to its stdout.
// The scanner waits up to `timeout` and kills a helper that does not finish in
// time. So a module that crashes, hangs, calls exit() or prints while being
// loaded cannot take envd down or garble its output; it is only refused, with
// the reason. No module code runs in envd's own process.
//
// In the helper, the module sees /dev/null on stdin, stdout and stderr, core
// dumps are disabled, and the signals a crash raises are at their default
// action. docs/design/plugin-abi.md, section 5, says why.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "plugin/registry.hpp"

namespace envd::plugin {

// The facts of the module at `path` (absolute); ModuleInfo::path is left empty.
// Never fails as a function: every problem is a refusal in the result. Not
// cancellable (Ctrl-C waits for at most `timeout`).
ModuleInfo scan_module(const std::filesystem::path& path, std::chrono::milliseconds timeout);

// Where the helper is: libexec/envd/envd-plugin-scan beside the running
// executable's bin/ (an install, or the build tree, which mirrors one), else
// the configured install prefix's.
std::filesystem::path scan_helper();

// What says which scanner made a verdict: envd's version and the helper's
// size and modification time. The manifest cache keeps verdicts only for the
// same identity, so an upgraded envd looks again at what an older one refused.
std::string scanner_identity();

}  // namespace envd::plugin
