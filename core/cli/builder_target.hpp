// What every command that talks to the context's builder shares: resolving the
// context and its driver, the driver request, the connect deadline, dialling
// the builder, and collecting Ctrl-C while BuildKit work runs.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "buildkit/client.hpp"
#include "cli/invocation.hpp"
#include "cli/signal_watcher.hpp"
#include "context/context.hpp"
#include "context/store.hpp"
#include "envd/result.hpp"
#include "plugin/module_handles.hpp"

namespace envd::cli {

inline constexpr std::chrono::milliseconds kDefaultConnectTimeout{10000};

// The connect deadline: `flag` (--connect-timeout) if given, else
// BUILDKIT_CONNECTING_TIMEOUT, else 10 s. Errors name the flag or variable.
Result<std::chrono::milliseconds> connect_timeout(const std::string& flag);

// The context a command runs in, with its builder's driver.
struct BuilderTarget {
  context::Context context;
  context::ContextStore store;
  plugin::BuilderModule driver;
  std::string buildkitd_image;  // --buildkitd-image, sent as args "image" to every verb
  // Cancelled by Ctrl-C or SIGTERM from resolve_builder() on, like the
  // invocation's host (which drivers watch).
  buildkit::CancelToken cancel;
  std::shared_ptr<SignalWatcher> signals;
  plugin::Host* host = nullptr;  // the invocation's, for the core's own progress lines
};

// Resolves --context / ENVD_CONTEXT / the current context and loads its
// builder driver. Unless invocation.quiet_progress, drivers' progress lines are
// printed to stderr from then on. From then on Ctrl-C and SIGTERM cancel the
// target's token and the invocation's host, so a driver stops its dial or
// bootstrap and a solve is cancelled on the daemon.
Result<BuilderTarget> resolve_builder(Invocation& invocation);

// The driver request for `target`: address, options (file options rewritten
// to the absolute paths of their stored copies), data dir, `timeout`, and
// `args_json` (a JSON object), to which target.buildkitd_image is added as
// "image" when set.
plugin::DriverRequest driver_request(const BuilderTarget& target, std::chrono::milliseconds timeout,
                                     std::string args_json = "{}");

// Dials the builder (the driver may bootstrap its daemon) and connects the
// BuildKit client within `timeout`. Errors read "cannot connect to buildkitd
// at <builder endpoint>: <reason>"; when the driver dialled but BuildKit did
// not answer, the driver's status (state, last log lines) is appended. When
// the driver refuses a daemon that no longer matches the context
// (Errc::already_exists) and stdin and stderr are terminals, the user is asked
// whether to recreate it (driver bootstrap with {"recreate": true}).
// When the driver can open session connections (dial_session), the client's
// solves use them (buildkit::Client::set_session_dialer).
// With Probe::concurrent the client comes back before BuildKit has answered
// (buildkit::Client::connect); a failure of that probe then surfaces through
// the client's calls, and connect_failure() words it as this function would.
// `expected` are the workers the caller believes the daemon has
// (buildkit::Client::connect).
Result<buildkit::Client> connect_builder(
    const BuilderTarget& target, std::chrono::milliseconds timeout, std::string args_json = "{}",
    buildkit::Client::Probe probe = buildkit::Client::Probe::wait,
    std::vector<buildkit::Worker> expected = {});

// `failure` (the client's "cannot connect to buildkitd at ..." error) with the
// driver's status appended, as connect_builder() reports it. The driver has
// a quarter of the connect `timeout` to say it (250 ms to 5 s).
Error connect_failure(const BuilderTarget& target, const Error& failure,
                      std::chrono::milliseconds timeout);

// Says once on stderr "Waiting for buildkitd at <endpoint> (at most <timeout>,
// --connect-timeout)" if, a few seconds from now, `still_waiting()` is true,
// unless `timeout` comes first. connect_builder() holds one around its
// connect; a build whose probe runs beside its Solve (Probe::concurrent)
// holds one until the solve ends, with the probe's end as the test. Held
// until destroyed (the destructor waits for its thread).
std::shared_ptr<void> connect_wait_notice(const BuilderTarget& target,
                                          std::chrono::milliseconds timeout,
                                          std::function<bool()> still_waiting);

}  // namespace envd::cli
