// What every command that talks to the context's runner shares: resolving the
// context and its runner driver, the driver request, and Ctrl-C / SIGTERM
// cancelling the driver's work.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "cli/invocation.hpp"
#include "cli/signal_watcher.hpp"
#include "context/context.hpp"
#include "context/store.hpp"
#include "envd/result.hpp"
#include "plugin/module_handles.hpp"

namespace envd::cli {

// The context a command runs in, with its runner's driver.
struct RunnerTarget {
  context::Context context;
  context::ContextStore store;
  plugin::RunnerModule driver;
  std::shared_ptr<SignalWatcher> signals;  // Ctrl-C and SIGTERM cancel the driver's work
};

// Resolves --context / ENVD_CONTEXT / the current context and loads only its
// runner module. Unless invocation.quiet_progress, the driver's progress lines
// are printed to stderr from then on.
Result<RunnerTarget> resolve_runner(Invocation& invocation);

// The driver request for `target`: address, options (file options rewritten
// to their stored copies), data dir, `timeout` (0: none) and `args`.
plugin::DriverRequest runner_request(const RunnerTarget& target, std::chrono::milliseconds timeout,
                                     const boost::json::object& args);

// How long a runner command waits: --timeout if given (a positive duration,
// "30s", "1m30s"), else `fallback`. A silent server answers nothing, so a
// script needs a way to give up sooner than the fallback.
Result<std::chrono::milliseconds> runner_timeout(const std::string& flag,
                                                 std::chrono::milliseconds fallback);

// Adds --timeout to `command`: "How long to wait for <what> (default <fallback>)".
void add_runner_timeout_flag(CLI::App& command, std::string& value, std::string_view what,
                             std::string_view fallback);

}  // namespace envd::cli
