// The docker runner: development environments as containers on a Docker Engine.
//
// Address grammar: empty (the engine comes from the environment, DOCKER_HOST,
// as the docker CLI does; stored empty), or a Docker Engine endpoint:
//   unix:///absolute/path/to/docker.sock
//   tcp://host:port                  (a trailing '/' is dropped)
//   ssh://[user@]host[:port]
// with no query. Hosts are IPv4, bracketed IPv6 or DNS names. Stored in the
// canonical URL form (scheme and DNS names lower-cased). Creating, listing,
// inspecting and removing environments come later.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class DockerRunner final : public sdk::RunnerDriver {
 public:
  Result<std::string> normalize_address(const std::string& address) const override;
};

}  // namespace envd::plugins
