// The moby-worker builder: the BuildKit that the Docker Engine itself embeds,
// reached through the Engine API (POST /grpc, upgraded to h2c). Nothing is
// started or managed: the engine is the one DOCKER_HOST names (default
// unix:///var/run/docker.sock; only unix:// for now).
//
// Address grammar: a display name only, used in messages and transports
// ("moby-worker://<name>"); it follows Docker's container-name rule
// [a-zA-Z0-9][a-zA-Z0-9_.-]+ and defaults to envd_buildkitd. A
// "moby-worker://" prefix is accepted and dropped when stored.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class MobyWorkerBuilder final : public sdk::BuilderDriver {
 public:
  static constexpr const char* default_name = "envd_buildkitd";

  Result<std::string> normalize_address(const std::string& address) const override;

  // Hijacks POST /grpc (unversioned: one request, no GET /_ping first) with
  // Upgrade: h2c; the fd then carries HTTP/2 with the engine's gRPC server
  // (moby.buildkit.v1.Control) on the other side.
  Result<sdk::Transport> dial(const sdk::Request& request) override;

  // Hijacks POST /session (unversioned) with Upgrade: h2c and the session's
  // X-Docker-Expose-Session-* headers: the Engine's BuildKit then calls the
  // session's services over this connection directly, as it does for the
  // docker CLI, instead of through Control.Session inside /grpc.
  // Errc::unsupported for an Engine without the route (404).
  Result<int> dial_session(const sdk::Request& request,
                           const sdk::SessionRequest& session) override;

  // {"state":"running","detail":"Docker Engine <version> (API <version>)"}, or
  // the engine's error (Errc::unavailable when it cannot be reached).
  Result<std::string> status(const sdk::Request& request) override;

  // The engine is not managed by envd: these fail with Errc::unsupported.
  Result<std::string> bootstrap(const sdk::Request& request) override;
  Status stop(const sdk::Request& request) override;
  Status remove(const sdk::Request& request) override;
};

}  // namespace envd::plugins
