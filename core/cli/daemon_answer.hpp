// Internal to the build: the daemon-answer cache, so a build without --output
// can send its Solve before the connect probe answers. The probe's answer
// (which workers the daemon has) decides the exporter: a moby worker takes
// the image itself, any other gets the `docker` exporter. That answer rarely
// changes between two builds on one context, so the last one is remembered.
//
// One JSON file per context, <cache dir>/daemons/<context id>.json (0600):
//   {
//     "format": 1,
//     "endpoint": "tcp://127.0.0.1:1234",      the builder it was read from
//     "workers": [ { "id": "...", "platforms": ["linux/amd64"] } ]
//   }
// An entry is never trusted alone. The build that uses it still probes the
// daemon, beside the Solve (asking only for workers other than a remembered
// one, which spares the daemon its platform detection: Client::connect);
// when the probe's workers would have chosen another exporter, the solve is
// cancelled and planned again from them, and the entry is rewritten. So an
// entry is stale for at most the one build that finds it so, and that build
// still does the right thing.
//
// Derived data: a missing, unreadable or corrupt file, or one written for
// another endpoint (the context was updated), is ignored and rewritten after
// the next probe; a failure to write it is ignored (the next build waits for
// the probe, as without a cache).
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include "buildkit/client.hpp"
#include "context/context.hpp"

namespace envd::cli {

// <cache dir>/daemons/<id>.json for `context` (its name when it has no id);
// empty when there is no cache directory.
std::filesystem::path daemon_answer_file(const context::Context& context);

// The workers remembered for `context`'s builder, or nothing (see above).
std::optional<std::vector<buildkit::Worker>> load_daemon_answer(const context::Context& context);

// Remembers `workers` (ids and platforms) for `context`'s builder, unless the
// file already says exactly that.
void save_daemon_answer(const context::Context& context,
                        const std::vector<buildkit::Worker>& workers);

}  // namespace envd::cli
