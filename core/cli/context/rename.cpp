// `envd context rename`: a new name for a context; the current one stays
// current.
#include "cli/context/context_commands.hpp"

#include <memory>
#include <string>

#include "cli/context/common.hpp"
#include "context/store.hpp"

namespace envd::cli {
namespace {

using context::Context;
using context::ContextList;

Status run_rename(Invocation& invocation, const std::string& from, const std::string& to) {
  if (auto st = context::validate_name(from); !st) return st;
  if (auto st = context::validate_name(to); !st) return st;
  auto store = invocation.store();
  if (!store) return store.error();
  auto st = store->update([&](ContextList& list) -> Status {
    Context* ctx = list.find(from);
    if (ctx == nullptr) return missing_context(from);
    if (from == to) return {};
    if (list.find(to) != nullptr) {
      return Error(Errc::already_exists, "context '" + to + "' already exists");
    }
    ctx->name = to;  // the private directory is keyed by id and stays put
    if (list.current == from) list.current = to;
    return {};
  });
  if (!st) return st;
  inform(from == to ? "Context " + from + " already has that name; nothing is changed"
                    : "Context " + from + " is renamed to " + to);
  return {};
}

}  // namespace

void add_context_rename_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  CLI::App* cmd =
      group.add_subcommand("rename", "Rename a context (the current one stays current)");
  cmd->add_option("old", *from, "Current name")->required();
  cmd->add_option("new", *to, "New name")->required();
  cmd->callback([&invocation, &action, from, to] {
    action = [&invocation, from, to] { return run_rename(invocation, *from, *to); };
  });
}

}  // namespace envd::cli
