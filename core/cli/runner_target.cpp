#include "cli/runner_target.hpp"

#include <utility>

#include "context/stored_files.hpp"

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
  request.data_dir = target.store.data_dir(target.context).string();
  request.timeout = timeout;
  request.args_json = json::serialize(args);
  return request;
}

}  // namespace envd::cli
