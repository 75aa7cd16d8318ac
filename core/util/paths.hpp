// Where envd keeps its files. Every path the core uses is derived here, so the
// resolution rules (environment variables, XDG fallbacks) live in one place.
#pragma once

#include <filesystem>

#include "envd/result.hpp"

namespace envd::util {

// $ENVD_CONFIG_DIR, else $XDG_CONFIG_HOME/envd, else $HOME/.config/envd.
Result<std::filesystem::path> config_dir();

// $XDG_CACHE_HOME/envd, else $HOME/.cache/envd. Holds derived data only.
Result<std::filesystem::path> cache_dir();

// $XDG_DATA_HOME/envd, else $HOME/.local/share/envd.
Result<std::filesystem::path> data_dir();

// The envd executable this process runs as, used to find what is installed or
// built next to it (modules, helpers): /proc/self/exe, except in one of envd's
// helper programs in <prefix>/libexec/envd/ (the BuildKit client, the module
// scanner), which act for the envd of their prefix: <prefix>/bin/envd.
Result<std::filesystem::path> executable_path();

// The install prefix of that envd, the directory above the one holding it
// (<prefix>/bin/envd): what is installed with it lies under it, at the same
// relative paths as in the configured install prefix. The build tree mirrors
// an install prefix, so there it is the build directory.
Result<std::filesystem::path> install_prefix();

}  // namespace envd::util
