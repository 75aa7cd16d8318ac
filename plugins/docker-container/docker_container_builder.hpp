// The docker-container builder: buildkitd in a Docker container, reached with
// `docker [--context=<ctx>] exec -i <container> buildctl dial-stdio`.
//
// Address grammar: <container>[?context=<docker context>], optionally written
// with a "docker-container://" prefix (dropped when stored). The container
// name follows Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+, the context name
// Docker's rule for contexts [a-zA-Z0-9][a-zA-Z0-9_.+-]+; `context` is the only
// parameter. An empty container name means the default, envd_buildkitd.
// Bootstrapping and dialling the container come later.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class DockerContainerBuilder final : public sdk::BuilderDriver {
 public:
  static constexpr const char* default_container = "envd_buildkitd";

  Result<std::string> normalize_address(const std::string& address) const override;
};

}  // namespace envd::plugins
