// Which exporter `envd build` asks the daemon for, and what envd itself does
// with the result afterwards (docs/building.md, "Where the image goes"):
//
//   no --output, daemon has worker "moby"   moby, name=<tag> (the Engine's own
//                                           BuildKit stores the image itself)
//   no --output, any other daemon           docker, name=<tag>; the tarball
//                                           comes back and is loaded into the
//                                           Engine at DOCKER_HOST
//   type=image on the moby-worker builder   moby with the same name; with
//                                           push=true envd pushes each name
//                                           through the Engine API afterwards
//   anything else                           passed to the daemon unchanged
//                                           (only name=<tag> is added to image
//                                           and moby exports that lack a name)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "buildkit/client.hpp"
#include "envd/result.hpp"
#include "output/output_spec.hpp"

namespace envd::output {

struct ExportChoice {
  buildkit::Export exporter;
  // The exporter's tarball is to be loaded into the local Docker Engine.
  bool load_into_engine = false;
  // Names to push through the Engine API after the build (moby-worker only).
  std::vector<std::string> push_names;
};

// `output` is the parsed --output, or nullptr when none was given; `builder`
// the context's builder type (e.g. "moby-worker", "tcp"). Errors: a push name
// that cannot be pushed (see parse_push_reference).
Result<ExportChoice> choose_export(const OutputSpec* output, const std::string& tag,
                                   bool daemon_has_moby_worker, std::string_view builder);

}  // namespace envd::output
