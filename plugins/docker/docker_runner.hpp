// The docker runner: development environments as containers on a Docker Engine.
//
// Address grammar: empty (the engine comes from the environment, DOCKER_HOST,
// as the docker CLI does; stored empty), or a Docker Engine endpoint:
//   unix:///absolute/path/to/docker.sock
//   tcp://host:port                  (a trailing '/' is dropped)
//   ssh://[user@]host[:port]
// with no query. Hosts are IPv4, bracketed IPv6 or DNS names. Stored in the
// canonical URL form (scheme and DNS names lower-cased). A stored address is
// the Engine the runner talks to, with TLS as DOCKER_TLS_VERIFY / DOCKER_TLS /
// DOCKER_CERT_PATH say; without one it is DOCKER_HOST's.
//
// Environments are containers labelled ai.tensorchord.envd.name=<name> (and
// ai.tensorchord.envd.vendor=envd), named after the environment, with a TTY
// and open stdin, restart policy "always" unless the spec says otherwise, and
// the Engine's default network mode unless the spec names one
// (environment.hpp has the spec and the environment object). Verbs:
//   create   checks the image is on the Engine (Errc::not_found offering
//            `envd up` or a pull), refuses a name in use (Errc::already_exists
//            offering --force, which removes that container first), creates
//            and starts the container, then polls it until it runs: running,
//            and still running without a restart 200 ms later. A container
//            that exits is Errc::unavailable with its exit code and last log
//            lines (it is kept, for `envd envs logs`); the request's deadline
//            is Errc::timeout; Ctrl-C removes the container.
//   list     every container with the name label, oldest first.
//   inspect  {"name": N}: Errc::not_found unless a container N with the
//            label exists.
//   remove   {"name": N, "volumes": bool}: kills and removes it (with its
//            anonymous volumes if asked), same not_found rule.
//   logs     {"name": N, "follow": bool, "tail": K}: the container's logs
//            (one stream with a TTY, stdout and stderr apart without).
//   attach   {"name": N, "shell": [argv]}: an Engine API exec in the running
//            container (bash if the image has it, else sh), with a TTY when
//            the user has a terminal; returns the shell's exit code.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class DockerRunner final : public sdk::RunnerDriver {
 public:
  Result<std::string> normalize_address(const std::string& address) const override;
  Result<std::string> create(const sdk::Request& request) override;
  Status check_create(const sdk::Request& request) override;
  Result<std::string> list(const sdk::Request& request) override;
  Result<std::string> inspect(const sdk::Request& request) override;
  Status remove(const sdk::Request& request) override;
  Status logs(const sdk::Request& request, const sdk::Stdio& stdio) override;
  Result<int> attach(const sdk::Request& request, const sdk::Stdio& stdio) override;
};

}  // namespace envd::plugins
