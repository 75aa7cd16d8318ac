// Which commands a run of envd registers. CLI11 builds every option of every
// command it is given, and a run needs only its own: `envd context ls`, run on
// every TAB of shell completion, spent a fifth of its time building the flags
// of build, run and the rest. So a run registers the one group that holds its
// command; help, completion, no command and an unknown word get every group,
// so whatever CLI11 lists or reports is complete.
#pragma once

#include <CLI/CLI.hpp>
#include <string_view>

#include "cli/commands.hpp"

namespace envd::cli {

// The first word of the command line that is neither an option nor the value
// of a top-level option that takes one (main.cpp's -c/--context and
// --buildkitd-image): the command's name, or empty.
std::string_view command_word(int argc, const char* const* argv);

// Registers the commands a run with these arguments can reach.
void add_commands(CLI::App& app, Invocation& invocation, Action& action, int argc,
                  const char* const* argv);

}  // namespace envd::cli
