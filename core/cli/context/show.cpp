// `envd context show`: the name of the context commands would use.
#include "cli/context/context_commands.hpp"

#include <fmt/core.h>

#include "context/resolve.hpp"
#include "context/store.hpp"

namespace envd::cli {
namespace {

Status run_show(Session& session) {
  auto store = session.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  auto resolved = context::resolve_context(*list, session.context_flag);
  if (!resolved) return resolved.error();
  fmt::print("{}\n", resolved->context.name);
  return {};
}

}  // namespace

void add_context_show_command(CLI::App& group, Session& session, Action& action) {
  CLI::App* cmd = group.add_subcommand("show", "Print the name of the context in use");
  cmd->callback([&session, &action] { action = [&session] { return run_show(session); }; });
}

}  // namespace envd::cli
