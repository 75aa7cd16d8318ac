// Command registration. Each add_*_commands() declares its subcommands on the
// CLI11 app; parsing fills a request struct and sets `action`, which main() runs
// after parsing succeeded. Commands print data to stdout and messages to
// stderr, and report failure through the returned Status.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cli/invocation.hpp"
#include "envd/result.hpp"

namespace envd::cli {

using Action = std::function<Status()>;

void add_context_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_plugin_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_build_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_builder_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_runner_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_version_command(CLI::App& app, Invocation& invocation, Action& action);
void add_completion_commands(CLI::App& app, Invocation& invocation, Action& action);
void add_login_commands(CLI::App& app, Invocation& invocation, Action& action);

// `envd __complete WORD... PARTIAL`, what the completion scripts run: prints
// the candidates for PARTIAL after WORD... on the command tree of `root`, one
// per line. main() calls it before parsing (CLI11 would take the words as
// options).
Status complete_command_line(Invocation& invocation, const CLI::App* root,
                             const std::vector<std::string>& words);

}  // namespace envd::cli
