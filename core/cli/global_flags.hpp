// The global flags (--context, --buildkitd-image) against the command they
// were given to, checked after parsing and before the command runs: a flag a
// command has no use for is refused, not ignored, so that a typo
// (`envd -c stagign version`) or a misplaced flag is said at once.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/invocation.hpp"
#include "envd/result.hpp"

namespace envd::cli {

// The parsed command's words below the top level: {"plugin", "ls"}.
std::vector<std::string> parsed_command(const CLI::App& app);

// Whether the command works through the context's builder (build, up,
// bootstrap, builder ..., prune): the commands --buildkitd-image is for.
bool uses_builder(const std::vector<std::string>& command);

// --buildkitd-image given to a command that uses no builder: the usage
// error's message ("--buildkitd-image is for ..."); empty when it is fine.
std::string unused_buildkitd_image(const Invocation& invocation,
                                   const std::vector<std::string>& command);

// --context given to a command that does not look the context up itself
// (`version`, `plugin ls`, `context rm`): the context must still exist, as
// every other command requires; Errc::not_found names it as they do.
// `context ls` is left to warn, as it does for ENVD_CONTEXT.
Status check_context_flag(const Invocation& invocation, const std::vector<std::string>& command);

}  // namespace envd::cli
