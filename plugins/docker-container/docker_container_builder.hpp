// The docker-container builder: buildkitd in a Docker container that envd
// creates and manages, reached through the Engine API at DOCKER_HOST by
// exec'ing `buildctl dial-stdio` in it (no docker CLI involved).
//
// Address grammar: <container>[?context=<docker context>], optionally written
// with a "docker-container://" prefix (dropped when stored). The container
// name follows Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+, the context name
// Docker's rule for contexts [a-zA-Z0-9][a-zA-Z0-9_.+-]+; `context` is the only
// parameter. An empty container name means the default, envd_buildkitd. The
// `context` parameter is accepted for compatibility with envd's addresses, but
// every verb that reaches the engine refuses it (Errc::unsupported): this
// driver talks to the engine DOCKER_HOST names.
//
// Driver options: see options.hpp and docs/docker-container.md. Verb
// arguments (Request::args_json): "image" (--buildkitd-image, overrides the
// `image` option) for dial, status and bootstrap; "recreate" (bool) for
// bootstrap; "keep_cache" (bool) for remove.
//
// The container: privileged by default, a named volume <name>_state at
// /var/lib/buildkit (the cache survives container restarts and recreation),
// the buildkitd.toml (generated into the context's private dir, or the user's
// stored `config`) bind-mounted read-only at /etc/buildkit/buildkitd.toml, and
// labels recording the image and a hash of the config and options; a container
// whose labels differ from what the context asks is never used silently.
#pragma once

#include <memory>
#include <string>

#include "engine_ops.hpp"
#include "envd/plugin.hpp"

namespace envd::plugins {

class DockerContainerBuilder final : public sdk::BuilderDriver {
 public:
  static constexpr const char* default_container = "envd_buildkitd";
  static constexpr const char* kFileOptions[] = {"config", nullptr};

  Result<std::string> normalize_address(const std::string& address) const override;
  Result<sdk::Options> normalize_options(const sdk::Options& options) const override;

  // Ensures the container runs (creating, starting, unpausing it as its state
  // requires; pulling the image if missing), then execs `buildctl dial-stdio`.
  Result<sdk::Transport> dial(const sdk::Request& request) override;

  // {"state","detail","container","container_state","image","volume","config",
  //  "exit_code","stale","logs","dial_error"}: "state" is running, stopped
  // (created, exited, paused, dead) or missing; "dial_error" says why this
  // process's last buildctl dial-stdio ended, if it failed.
  Result<std::string> status(const sdk::Request& request) override;

  // As dial's ensure step, returning {"container","image","volume","action"},
  // action one of created, recreated, started, unpaused, running.
  Result<std::string> bootstrap(const sdk::Request& request) override;

  // Stops the container (Errc::not_found when there is none).
  Status stop(const sdk::Request& request) override;

  // Removes the container and, unless "keep_cache", its state volume.
  Status remove(const sdk::Request& request) override;

 private:
  // What this process's last dial-stdio said, for status().
  std::shared_ptr<docker_container::DialLog> dials_ = std::make_shared<docker_container::DialLog>();
};

}  // namespace envd::plugins
