// `envd version`: what this envd is (its version, the git revision it was
// built from, the plugin ABI it speaks) and what it would load (each module
// on the search path with its type, version and ABI), for bug reports and
// for CI images that must carry exactly the plugins they need.
#include <fmt/core.h>
#include <boost/json.hpp>
#include <memory>
#include <string>

#include "cli/choice_flag.hpp"
#include "cli/commands.hpp"
#include "envd/plugin_abi.h"
#include "envd_git_revision.h"  // generated at every build: ENVD_GIT_REVISION
#include "util/data_out.hpp"
#include "util/json.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

namespace json = boost::json;

std::string abi_of(const plugin::ModuleInfo& module) {
  if (module.abi_major == 0 && module.abi_minor == 0) return "";
  return std::to_string(module.abi_major) + "." + std::to_string(module.abi_minor);
}

Status run_version(Invocation& invocation, const std::string& format_flag) {
  auto format = parse_format(format_flag);
  if (!format) return format.error();
  const std::string abi = std::to_string(ENVD_ABI_MAJOR) + "." + std::to_string(ENVD_ABI_MINOR);
  // Refused modules are listed with their reason, not warned about.
  const auto& modules = invocation.registry(/*quiet=*/true).modules();
  warn_ignored_plugin_path();

  if (*format == OutputFormat::json) {
    json::array plugins;
    for (const auto& m : modules) {
      json::object row{
          {"type", m.type},          {"kind", m.type.empty() ? "" : plugin::to_string(m.kind)},
          {"version", m.version},    {"abi", abi_of(m)},
          {"path", m.path.string()}, {"status", m.ok ? "ok" : "refused"}};
      if (!m.ok) row["reason"] = m.reason;
      plugins.push_back(std::move(row));
    }
    json::object out{{"version", ENVD_VERSION},
                     {"git_revision", ENVD_GIT_REVISION},
                     {"plugin_abi", abi},
                     {"plugins", std::move(plugins)}};
    fmt::print(util::data_out(), "{}", util::to_compact_json(out));
    return {};
  }
  fmt::print(util::data_out(), "envd:         {}\n", ENVD_VERSION);
  fmt::print(util::data_out(), "Git revision: {}\n", ENVD_GIT_REVISION);
  fmt::print(util::data_out(), "Plugin ABI:   {}\n", abi);
  for (const auto& m : modules) {
    if (m.ok) {
      fmt::print(util::data_out(), "Plugin:       {} {} {} (ABI {})\n", plugin::to_string(m.kind),
                 m.type, util::printable(m.version), abi_of(m));
    } else {
      // A file name is anyone's: escaped, as in the warnings.
      fmt::print(util::data_out(), "Plugin:       {} refused: {}\n",
                 util::printable(m.path.string()), util::printable(m.reason));
    }
  }
  return {};
}

}  // namespace

void add_version_command(CLI::App& app, Invocation& invocation, Action& action) {
  auto format = std::make_shared<std::string>("table");
  CLI::App* cmd =
      app.add_subcommand("version", "Show envd's version, revision, plugin ABI and plugins");
  cmd->add_option("-f,--format", *format, "Output format: table or json")
      ->capture_default_str()
      ->check(one_of({"table", "json"}));
  cmd->callback([&invocation, &action, format] {
    action = [&invocation, format] { return run_version(invocation, *format); };
  });
}

}  // namespace envd::cli
