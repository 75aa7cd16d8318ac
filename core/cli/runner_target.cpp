#include "cli/runner_target.hpp"

#include <utility>

#include "cli/duration_flag.hpp"
#include "context/stored_files.hpp"
#include "util/duration.hpp"
#include "util/text.hpp"

namespace envd::cli {

namespace json = boost::json;

Result<RunnerTarget> resolve_runner(Invocation& invocation) {
  auto current = invocation.current_context();
  if (!current) return current.error();
  auto driver = invocation.registry().runner(current->context.runner);
  if (!driver) return driver.error();
  invocation.host.set_quiet(invocation.quiet_progress);
  plugin::Host* host = &invocation.host;
  return RunnerTarget{std::move(current->context), std::move(current->store), *driver,
                      std::make_shared<SignalWatcher>([host] { host->cancel(); })};
}

plugin::DriverRequest runner_request(const RunnerTarget& target, std::chrono::milliseconds timeout,
                                     const json::object& args) {
  plugin::DriverRequest request;
  request.context = target.context.name;
  request.address = target.context.runner_address.value_or("");
  request.options = context::resolve_stored_files(
      target.store, target.context, target.context.runner_options, target.driver.file_options());
  request.data_dir = target.store.driver_data_dir(target.context).string();
  request.timeout = timeout;
  request.args_json = json::serialize(args);
  return request;
}

Result<std::chrono::milliseconds> runner_timeout(const std::string& flag,
                                                 std::chrono::milliseconds fallback) {
  if (flag.empty()) return fallback;
  auto parsed = util::parse_duration(flag, "--timeout");
  if (!parsed) return parsed.error();
  if (parsed->count() <= 0) {
    return Error(Errc::invalid_argument,
                 "invalid --timeout '" + util::printable(flag, 40) + "': it must be positive");
  }
  return *parsed;
}

void add_runner_timeout_flag(CLI::App& command, std::string& value, std::string_view what,
                             std::string_view fallback) {
  // Checked as the command line is read, so a bad value costs no build.
  command
      .add_option(
          "--timeout", value,
          "How long to wait for " + std::string(what) + " (default " + std::string(fallback) + ")")
      ->check(positive_duration());
}

}  // namespace envd::cli
