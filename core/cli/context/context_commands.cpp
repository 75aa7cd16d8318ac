#include "cli/context/context_commands.hpp"

namespace envd::cli {

void add_context_commands(CLI::App& app, Invocation& invocation, Action& action) {
  CLI::App* group = app.add_subcommand("context", "Manage envd contexts");
  group->require_subcommand(1);
  add_context_create_command(*group, invocation, action);
  add_context_ls_command(*group, invocation, action);
  add_context_use_command(*group, invocation, action);
  add_context_rm_command(*group, invocation, action);
  add_context_inspect_command(*group, invocation, action);
  add_context_show_command(*group, invocation, action);
  add_context_update_command(*group, invocation, action);
  add_context_rename_command(*group, invocation, action);
  add_context_export_command(*group, invocation, action);
  add_context_import_command(*group, invocation, action);
}

}  // namespace envd::cli
