// `envd builder ...`: the context's builder daemon, probed and managed through
// its driver and the core's BuildKit client.
#include <fmt/core.h>
#include <boost/json.hpp>
#include <memory>
#include <string>

#include "cli/builder_target.hpp"
#include "cli/commands.hpp"
#include "util/json.hpp"

namespace envd::cli {
namespace {

namespace json = boost::json;

// ---- envd builder status ---------------------------------------------------

Status run_status(Session& session, const std::string& format_flag,
                  const std::string& timeout_flag) {
  auto format = parse_format(format_flag);
  if (!format) return format.error();
  auto timeout = connect_timeout(timeout_flag);
  if (!timeout) return timeout.error();
  auto target = resolve_builder(session);
  if (!target) return target.error();

  json::object out;
  out["context"] = target->context.name;
  out["builder"] = target->context.builder;
  out["address"] = target->context.builder_endpoint();
  Status reachable = [&]() -> Status {
    auto client = connect_builder(*target, *timeout);
    if (!client) return client.error();
    auto info = client->info(*timeout);
    if (!info) return info.error();
    out["version"] = info->version;
    json::array workers;
    for (const auto& w : info->workers) {
      json::object worker;
      worker["id"] = w.id;
      json::array platforms;
      for (const auto& p : w.platforms) platforms.emplace_back(p);
      worker["platforms"] = std::move(platforms);
      workers.push_back(std::move(worker));
    }
    out["workers"] = std::move(workers);
    return {};
  }();
  out["reachable"] = reachable.ok();
  if (!reachable) out["error"] = reachable.error().message();

  if (*format == OutputFormat::json) {
    fmt::print("{}", util::to_compact_json(out));
  } else {
    fmt::print("Context:    {}\n", target->context.name);
    fmt::print("Builder:    {}\n", target->context.builder_endpoint());
    fmt::print("Reachable:  {}\n", reachable ? "yes" : "no");
    if (reachable) {
      std::string version(out["version"].as_string());
      fmt::print("BuildKit:   {}\n",
                 version.empty() ? "unknown (the daemon has no Info API)" : version);
      for (const auto& w : out["workers"].as_array()) {
        std::string platforms;
        for (const auto& p : w.at("platforms").as_array()) {
          platforms += (platforms.empty() ? "" : ", ") + std::string(p.as_string());
        }
        fmt::print("Worker:     {} ({})\n", std::string(w.at("id").as_string()), platforms);
      }
    }
  }
  if (!reachable) return reachable;
  return {};
}

}  // namespace

void add_builder_commands(CLI::App& app, Session& session, Action& action) {
  {
    CLI::App* group = app.add_subcommand("builder", "Inspect the context's builder");
    group->require_subcommand(1);
    auto format = std::make_shared<std::string>("table");
    auto timeout = std::make_shared<std::string>();
    CLI::App* status =
        group->add_subcommand("status", "Probe the builder: reachable, BuildKit version, workers");
    status->add_option("-f,--format", *format, "Output format: table or json")
        ->capture_default_str();
    status->add_option("--connect-timeout", *timeout,
                       "How long to wait (default: BUILDKIT_CONNECTING_TIMEOUT or 10s)");
    status->callback([&session, &action, format, timeout] {
      action = [&session, format, timeout] { return run_status(session, *format, *timeout); };
    });
  }
}

}  // namespace envd::cli
