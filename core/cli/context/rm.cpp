// `envd context rm`: removes contexts and their private directories.
#include "cli/context/context_commands.hpp"

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "cli/context/common.hpp"
#include "context/resolve.hpp"
#include "context/store.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
using context::Context;
using context::ContextList;

struct RmRequest {
  NameArgs names;
  bool force = false;
};

Status run_rm(Invocation& invocation, const RmRequest& req) {
  std::vector<std::string> names = req.names.all();
  if (names.empty()) {
    return Error(Errc::invalid_argument, "a context name is required (NAME... or --name NAME)");
  }
  for (const auto& name : names) {
    if (auto st = context::validate_name(name); !st) return st;
  }
  auto store = invocation.store();
  if (!store) return store.error();

  std::vector<Context> removed;
  std::string new_current;
  bool current_changed = false;
  auto st = store->update([&](ContextList& list) -> Status {
    removed.clear();
    current_changed = false;
    std::set<std::string> doomed;
    // The context in use may come from ENVD_CONTEXT or --context rather than
    // the store: `context ls` marks it current, and it is as much in use.
    const context::ContextChoice in_use =
        context::choose_context(list.current, invocation.context_flag);
    for (const auto& name : names) {
      const Context* ctx = list.find(name);
      if (ctx == nullptr) {
        if (req.force) continue;  // --force ignores names that do not exist
        return missing_context(name);
      }
      if (name == list.current && !req.force) {
        return Error(Errc::invalid_argument,
                     "cannot remove the current context '" + name +
                         "'; switch with 'envd context use NAME' first, or pass --force");
      }
      if (name == in_use.name && !req.force) {
        return Error(Errc::invalid_argument,
                     "cannot remove context '" + name + "': it is the one in use (from " +
                         context::describe(in_use.source) + "); pass --force to remove it anyway");
      }
      if (doomed.insert(name).second) removed.push_back(*ctx);
    }
    std::erase_if(list.contexts, [&](const Context& c) { return doomed.count(c.name) != 0; });
    if (doomed.count(list.current) != 0) {
      // --force on the current context falls back to the default one.
      list.current = list.find("default") != nullptr ? "default" : "";
      new_current = list.current;
      current_changed = true;
    }
    return {};
  });
  if (!st) return st;
  for (const auto& ctx : removed) {
    // The store no longer refers to it; a leftover directory is only litter.
    std::error_code ec;
    fs::remove_all(store->data_dir(ctx), ec);
    if (ec) warn("cannot remove '" + store->data_dir(ctx).string() + "': " + ec.message());
    inform("Context " + ctx.name + " is removed");
  }
  if (current_changed) {
    if (new_current.empty()) {
      warn("no current context is left; choose one with 'envd context use NAME'");
    } else {
      inform("Current context is now \"" + new_current + "\"");
    }
  }
  return {};
}

}  // namespace

void add_context_rm_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto req = std::make_shared<RmRequest>();
  CLI::App* cmd = group.add_subcommand("rm", "Remove contexts");
  cmd->alias("remove");
  cmd->add_option("names", req->names.positional, "Names of the contexts");
  cmd->add_option("--name", req->names.flagged, "Name of a context (repeatable)")
      ->allow_extra_args(false);
  // As add_name_args: no name at all is a command line envd cannot use.
  cmd->parse_complete_callback([cmd, names = &req->names] {
    if (names->all().empty() && !version_asked(cmd) && !words_left_over(cmd)) {
      throw CLI::ValidationError("a context name is required (NAME... or --name NAME)");
    }
  });
  cmd->add_flag("-f,--force", req->force,
                "Remove the current context too (falling back to 'default') and ignore names "
                "that do not exist");
  cmd->callback([&invocation, &action, req] {
    action = [&invocation, req] { return run_rm(invocation, *req); };
  });
}

}  // namespace envd::cli
