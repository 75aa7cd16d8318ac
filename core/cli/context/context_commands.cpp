#include "cli/context/context_commands.hpp"

#include <array>

#include "cli/command_groups.hpp"

namespace envd::cli {
namespace {

// In the order `envd context --help` lists them.
const std::array<CommandEntry, 10> kContextCommands = {{
    {{"create"}, add_context_create_command},
    {{"ls", "list"}, add_context_ls_command},
    {{"use"}, add_context_use_command},
    {{"rm", "remove"}, add_context_rm_command},
    {{"inspect"}, add_context_inspect_command},
    {{"show"}, add_context_show_command},
    {{"update"}, add_context_update_command},
    {{"rename"}, add_context_rename_command},
    {{"export"}, add_context_export_command},
    {{"import"}, add_context_import_command},
}};

}  // namespace

void add_context_commands(CLI::App& app, Invocation& invocation, Action& action) {
  CLI::App* group = app.add_subcommand("context", "Manage envd contexts");
  group->require_subcommand(1);
  add_named(*group, invocation, action, kContextCommands, invocation.subcommand_word);
}

}  // namespace envd::cli
