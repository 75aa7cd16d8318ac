// `envd context use`: makes a context the store's current one.
#include "cli/context/context_commands.hpp"

#include <memory>
#include <optional>
#include <string>

#include "cli/context/common.hpp"
#include "context/resolve.hpp"
#include "context/store.hpp"

namespace envd::cli {
namespace {

using context::ContextList;

Status run_use(Invocation& invocation, const NameArgs& names) {
  auto name = one_context_name(names);
  if (!name) return name.error();
  auto store = invocation.store();
  if (!store) return store.error();
  auto st = store->update([&](ContextList& list) -> Status {
    if (list.find(*name) == nullptr) return missing_context(*name);
    list.current = *name;
    return {};
  });
  if (!st) return st;
  inform("Current context is now \"" + *name + "\"");
  // ENVD_CONTEXT outranks the store's current context, so the switch may not
  // apply in this environment.
  auto in_effect = context::choose_context(*name, std::nullopt);
  if (in_effect.source == context::ContextSource::environment) {
    warn("ENVD_CONTEXT is set to '" + in_effect.name +
         "' and overrides the current context in this environment");
  }
  return {};
}

}  // namespace

void add_context_use_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto names = std::make_shared<NameArgs>();
  CLI::App* cmd = group.add_subcommand("use", "Make a context the current one");
  add_name_args(cmd, *names);
  cmd->callback([&invocation, &action, names] {
    action = [&invocation, names] { return run_use(invocation, *names); };
  });
}

}  // namespace envd::cli
