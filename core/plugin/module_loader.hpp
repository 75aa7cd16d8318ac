// Internal to core/plugin: loading a module file into the current process.
//
// load_module() dlopens the file (Boost.DLL, RTLD_NOW | RTLD_LOCAL, absolute
// path), resolves ENVD_PLUGIN_ENTRY_SYMBOL and calls it. The library handle is
// kept in a process-wide table that is never destroyed, so a module stays
// mapped until the process exits whatever happens to the Registry that asked
// for it: descriptors, function pointers and exception objects that came from
// the module never dangle. Loading the same path again returns the descriptor
// obtained the first time, without calling the entry again.
//
// The scanner runs the same function in its helper process; see scanner.hpp.
// Not thread-safe against concurrent discovery; load from one thread.
#pragma once

#include <filesystem>

#include "envd/plugin_abi.h"
#include "envd/result.hpp"

namespace envd::plugin {

// Cheap check of the file's first bytes, run before anything loads it: an error
// "not an ELF shared library" (or the read error) if it cannot be one, and
// "built for aarch64 (arm64); this envd runs on x86-64 (amd64)" (or for the
// other word size) if it was made for another machine.
Status check_elf_header(const std::filesystem::path& path);

// Loads `path` (absolute) and returns what its entry function returned (which
// may be null; the caller validates). The error message is a refusal reason
// without the path: "cannot be loaded: <dlerror text>", "no entry symbol
// 'envd_plugin_entry'", "entry threw an exception: <what>".
Result<const envd_plugin_descriptor*> load_module(const std::filesystem::path& path);

}  // namespace envd::plugin
