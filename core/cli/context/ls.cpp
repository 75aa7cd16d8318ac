// `envd context ls`: every context as a table or JSON, the one in use marked.
#include "cli/choice_flag.hpp"
#include "cli/context/context_commands.hpp"

#include <fmt/core.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/context/common.hpp"
#include "cli/table.hpp"
#include "context/resolve.hpp"
#include "util/data_out.hpp"
#include "util/json.hpp"

namespace envd::cli {
namespace {

namespace json = boost::json;

Status run_ls(Invocation& invocation, const std::string& format_flag) {
  auto format = parse_format(format_flag);
  if (!format) return format.error();
  auto store = invocation.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  std::string current = context_in_use(*list, invocation);
  // A context in use that is not valid or not there is warned of, in the
  // words every other command fails with (naming where the name came from),
  // and the contexts are listed all the same, so that the right one is found.
  if (auto resolved = context::resolve_context(*list, invocation.context_flag); !resolved) {
    warn(resolved.error().message());
  }

  if (*format == OutputFormat::json) {
    json::array out;
    for (const auto& ctx : list->contexts) {
      json::object row;
      row["context"] = ctx.name;
      row["builder"] = ctx.builder;
      row["builder_addr"] = ctx.builder_endpoint();
      row["runner"] = ctx.runner;
      if (ctx.runner_address) row["runner_addr"] = *ctx.runner_address;
      row["current"] = ctx.name == current;
      out.push_back(std::move(row));
    }
    fmt::print(util::data_out(), "{}", util::to_compact_json(out));
    return {};
  }
  Table table({"CONTEXT", "BUILDER", "BUILDER ADDR", "RUNNER", "RUNNER ADDR"});
  table.reserve(list->contexts.size());
  for (const auto& ctx : list->contexts) {
    table.add_row({ctx.name == current ? table.keep({ctx.name, " (current)"}) : ctx.name,
                   ctx.builder, table.keep({ctx.builder, "://", ctx.builder_address}), ctx.runner,
                   ctx.runner_address ? std::string_view(*ctx.runner_address) : ""});
  }
  table.print(util::data_out());
  return {};
}

}  // namespace

void add_context_ls_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto format = std::make_shared<std::string>("table");
  CLI::App* cmd = group.add_subcommand("ls", "List contexts");
  cmd->alias("list");
  cmd->add_option("-f,--format", *format, "Output format: table or json")
      ->capture_default_str()
      ->check(one_of({"table", "json"}));
  cmd->callback([&invocation, &action, format] {
    action = [&invocation, format] { return run_ls(invocation, *format); };
  });
}

}  // namespace envd::cli
