// `envd context show`: the name of the context commands would use.
#include "cli/context/context_commands.hpp"

#include <fmt/core.h>

#include "context/store.hpp"
#include "util/data_out.hpp"

namespace envd::cli {
namespace {

Status run_show(Invocation& invocation) {
  auto current = invocation.current_context();
  if (!current) return current.error();
  fmt::print(util::data_out(), "{}\n", current->context.name);
  return {};
}

}  // namespace

void add_context_show_command(CLI::App& group, Invocation& invocation, Action& action) {
  CLI::App* cmd = group.add_subcommand("show", "Print the name of the context in use");
  cmd->callback(
      [&invocation, &action] { action = [&invocation] { return run_show(invocation); }; });
}

}  // namespace envd::cli
