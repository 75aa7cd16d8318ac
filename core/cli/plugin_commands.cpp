// `envd plugin ls`: every module on the search path, usable or refused.
#include <fmt/core.h>
#include <boost/json.hpp>
#include <memory>
#include <string>

#include "cli/choice_flag.hpp"
#include "cli/commands.hpp"
#include "cli/table.hpp"
#include "util/data_out.hpp"
#include "util/json.hpp"

namespace envd::cli {
namespace {

namespace json = boost::json;

std::string abi_version(const plugin::ModuleInfo& module) {
  if (module.abi_major == 0 && module.abi_minor == 0) return "";
  return std::to_string(module.abi_major) + "." + std::to_string(module.abi_minor);
}

Status run_plugin_ls(Invocation& invocation, const std::string& format_flag) {
  auto format = parse_format(format_flag);
  if (!format) return format.error();
  // Refusals are this command's report, not warnings; an ignored search
  // path entry has no row to show it.
  const auto& modules = invocation.registry(/*quiet=*/true).modules();
  warn_ignored_plugin_path();

  if (*format == OutputFormat::json) {
    json::array out;
    for (const auto& m : modules) {
      json::object row;
      row["type"] = m.type;
      row["kind"] = m.type.empty() ? "" : plugin::to_string(m.kind);
      row["version"] = m.version;
      row["maturity"] = m.type.empty() ? "" : plugin::maturity_name(m.maturity);
      row["description"] = m.description;
      row["abi"] = abi_version(m);
      row["path"] = m.path.string();
      row["status"] = m.ok ? "ok" : "refused";
      if (!m.ok) row["reason"] = m.reason;
      out.push_back(std::move(row));
    }
    fmt::print(util::data_out(), "{}", util::to_compact_json(out));
    return {};
  }
  Table table({"TYPE", "KIND", "VERSION", "MATURITY", "PATH", "STATUS"});
  for (const auto& m : modules) {
    auto or_dash = [](const std::string& s) { return s.empty() ? std::string_view("-") : s; };
    table.add_row({or_dash(m.type), m.type.empty() ? "-" : plugin::to_string(m.kind),
                   or_dash(m.version), m.type.empty() ? "-" : plugin::maturity_name(m.maturity),
                   table.keep({m.path.native()}),
                   m.ok ? "ok" : table.keep({"refused: ", m.reason})});
  }
  table.print(util::data_out());
  return {};
}

}  // namespace

void add_plugin_commands(CLI::App& app, Invocation& invocation, Action& action) {
  CLI::App* group = app.add_subcommand("plugin", "Inspect driver plugins");
  group->require_subcommand(1);
  auto format = std::make_shared<std::string>("table");
  CLI::App* ls =
      group->add_subcommand("ls", "List driver modules on the search path, with their status");
  ls->alias("list");
  ls->add_option("-f,--format", *format, "Output format: table or json")
      ->capture_default_str()
      ->check(one_of({"table", "json"}));
  ls->callback([&invocation, &action, format] {
    action = [&invocation, format] { return run_plugin_ls(invocation, *format); };
  });
}

}  // namespace envd::cli
