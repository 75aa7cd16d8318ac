// Command registration. Each add_*_commands() declares its subcommands on the
// CLI11 app; parsing fills a request struct and sets `action`, which main() runs
// after parsing succeeded. Commands print data to stdout and messages to
// stderr, and report failure through the returned Status.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/invocation.hpp"
#include "envd/result.hpp"

namespace envd::cli {

using Action = std::function<Status()>;

void add_context_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_plugin_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_build_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_builder_commands(CLI::App& app, Invocation& invocation, Action& action);

}  // namespace envd::cli
