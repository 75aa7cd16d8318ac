// `envd context show`: the name of the context commands would use.
#include "cli/context/context_commands.hpp"

#include <fmt/core.h>

#include "context/resolve.hpp"
#include "context/store.hpp"

namespace envd::cli {
namespace {

Status run_show(Invocation& invocation) {
  auto store = invocation.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  auto resolved = context::resolve_context(*list, invocation.context_flag);
  if (!resolved) return resolved.error();
  fmt::print("{}\n", resolved->context.name);
  return {};
}

}  // namespace

void add_context_show_command(CLI::App& group, Invocation& invocation, Action& action) {
  CLI::App* cmd = group.add_subcommand("show", "Print the name of the context in use");
  cmd->callback(
      [&invocation, &action] { action = [&invocation] { return run_show(invocation); }; });
}

}  // namespace envd::cli
