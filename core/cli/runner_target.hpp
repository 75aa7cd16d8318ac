// What every command that talks to the context's runner shares: resolving the
// context and its runner driver, the driver request, and Ctrl-C / SIGTERM
// cancelling the driver's work.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <memory>

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

}  // namespace envd::cli
