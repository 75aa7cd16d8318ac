// The tar that carries buildkitd.toml into the buildkitd container (the
// Engine's PUT /containers/{id}/archive takes only a tar).
//
// libarchive is opened on first use, not linked: a module linked to it maps
// it and the nine libraries it brings (ICU, libxml2, the compressors) at every
// load, and this module is loaded by every command on the default context
// (a build's start, `context create`), while only a bootstrap with a config
// on an Engine that does not share this disk writes the archive.
#pragma once

#include <string>

#include "envd/result.hpp"

namespace envd::plugins::docker_container {

// A tar of `dir`/ (0755) and `dir`/`file` (0444) holding `text`. Error:
// "cannot make the config archive: <why>", where a missing libarchive says
// "cannot load libarchive.so.13: <the loader's reason> (install libarchive13)".
Result<std::string> config_tar(const std::string& dir, const std::string& file,
                               const std::string& text);

}  // namespace envd::plugins::docker_container
