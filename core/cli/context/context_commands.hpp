// `envd context ...`, one file per command as docker/cli lays out
// cli/command/context/. add_context_commands (cli/commands.hpp) creates the
// group and calls the add_context_*_command of the subcommand named, or each
// in the order help lists them (cli/command_groups.hpp); each declares its
// flags on `group` and, when parsed, sets `action` to run it.
// Helpers the commands share are in common.hpp and builder_options.hpp.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/invocation.hpp"

namespace envd::cli {

void add_context_create_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_ls_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_use_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_rm_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_inspect_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_show_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_update_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_rename_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_export_command(CLI::App& group, Invocation& invocation, Action& action);
void add_context_import_command(CLI::App& group, Invocation& invocation, Action& action);

}  // namespace envd::cli
