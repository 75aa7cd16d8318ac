// `envd context inspect`: one context as JSON, with where its files are.
#include "cli/context/context_commands.hpp"

#include <fmt/core.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/context/common.hpp"
#include "context/resolve.hpp"
#include "context/store.hpp"
#include "util/data_out.hpp"
#include "util/json.hpp"

namespace envd::cli {
namespace {

namespace json = boost::json;
using context::Context;
using context::ContextList;

// The context named in `names`, or without a name the one in use.
Result<Context> context_to_inspect(Invocation& invocation, const ContextList& list,
                                   const std::vector<std::string>& names) {
  if (!names.empty()) {
    auto name = one_context_name({names, {}});
    if (!name) return name.error();
    const Context* ctx = list.find(*name);
    if (ctx == nullptr) return missing_context(*name).error();
    return *ctx;
  }
  auto resolved = context::resolve_context(list, invocation.context_flag);
  if (!resolved) return resolved.error();
  return resolved->context;
}

json::object options_json(const context::Options& options) {
  json::object out;
  for (const auto& [key, value] : options) out[key] = value;
  return out;
}

Status run_inspect(Invocation& invocation, const std::vector<std::string>& names) {
  auto store = invocation.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  auto ctx = context_to_inspect(invocation, *list, names);
  if (!ctx) return ctx.error();

  json::object out;
  out["name"] = ctx->name;
  out["current"] = ctx->name == context_in_use(*list, invocation);
  out["builder"] = ctx->builder;
  out["builder_address"] = ctx->builder_address;
  out["builder_addr"] = ctx->builder_endpoint();
  out["builder_options"] = options_json(ctx->builder_options);
  out["runner"] = ctx->runner;
  if (ctx->runner_address) out["runner_address"] = *ctx->runner_address;
  out["runner_options"] = options_json(ctx->runner_options);
  // Names of the private files only: their contents (keys) are never printed.
  auto files = material_files(*store, *ctx);
  if (!files) return files.error();
  json::array material;
  for (const auto& file : *files) material.emplace_back(file);
  out["material"] = std::move(material);
  json::object storage;
  storage["store"] = store->file().string();
  storage["data_dir"] = store->data_dir(*ctx).string();
  out["storage"] = std::move(storage);
  fmt::print(util::data_out(), "{}", util::to_pretty_json(out));
  return {};
}

}  // namespace

void add_context_inspect_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto names = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd =
      group.add_subcommand("inspect", "Show a context as JSON (default: the one in use)");
  // One positional name, shown as "[name]", that may follow `--`
  // (add_name_args says why it is expected once).
  cmd->add_option("name", *names, "Name of the context")->expected(1, 1);
  // Two names are a command line envd cannot use as given: exit 2, as for
  // every command that takes one context name (add_name_args).
  cmd->parse_complete_callback([names] {
    if (names->size() > 1) {
      throw CLI::ValidationError("expected one context name, got " + std::to_string(names->size()));
    }
  });
  cmd->callback([&invocation, &action, names] {
    action = [&invocation, names] { return run_inspect(invocation, *names); };
  });
}

}  // namespace envd::cli
