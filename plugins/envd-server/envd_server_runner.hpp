// The envd-server runner: development environments as pods on Kubernetes,
// created through an envd-server's REST API.
//
// Address grammar: empty (stored empty; at run time the server comes from
// ENVD_SERVER_HOST), or the server's base URL http[s]://host[:port][/path]
// with no user, query or fragment. Stored in the canonical URL form with
// trailing slashes dropped from the path, since the API paths (/api/v1/...)
// are appended to it. A value without a scheme, such as the SSH endpoint
// localhost:2222, is rejected with a hint. Environment verbs come later.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class EnvdServerRunner final : public sdk::RunnerDriver {
 public:
  Result<std::string> normalize_address(const std::string& address) const override;
};

}  // namespace envd::plugins
