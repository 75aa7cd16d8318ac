// The envd-server runner: development environments as pods on Kubernetes,
// created through an envd-server's REST API (docs/envd-server.md).
//
// Address grammar: empty (stored empty; at run time the server comes from
// ENVD_SERVER_HOST, else http://localhost:8080), or the server's base URL
// http[s]://host[:port][/path] with no user, query or fragment. Stored in the
// canonical URL form with trailing slashes dropped from the path, since the
// API paths (/api/v1/...) are appended to it. A value without a scheme, such
// as the SSH endpoint localhost:2222, is rejected with a hint.
//
// Options: runner-tls-ca, a file option (the CA an https:// server is
// verified with; without it, the system's CAs). Verification is never off.
// ssh-port: the server's SSH gateway port (default 2222).
//
// Verbs: create, list, inspect, remove under /api/v1/users/<login>/environments
// with the token `envd login` stored in the context's private directory
// (kLoginFile). create waits until the environment's phase is Running, within
// the request's timeout. attach runs OpenSSH to the gateway on the server's
// host as `<login>/<env>` with the login's key (ssh_access.hpp) and keeps a
// `Host <env>.envd` block in ~/.ssh/config; logs is unsupported (the API has
// no endpoint for it).
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class EnvdServerRunner final : public sdk::RunnerDriver {
 public:
  static constexpr const char* kFileOptions[] = {"runner-tls-ca", nullptr};
  // What `envd login` writes into the context's private directory (0600):
  // {"server": <base URL>, "login_name": ..., "identity_token": ...,
  //  "identity_file": <the private key's path>}.
  static constexpr const char* kLoginFile = "runner-login.json";

  Result<std::string> normalize_address(const std::string& address) const override;
  Result<sdk::Options> normalize_options(const sdk::Options& options) const override;
  Result<std::string> create(const sdk::Request& request) override;
  Status check_create(const sdk::Request& request) override;
  Result<std::string> list(const sdk::Request& request) override;
  Result<std::string> inspect(const sdk::Request& request) override;
  Status remove(const sdk::Request& request) override;
  Status logs(const sdk::Request& request, const sdk::Stdio& stdio) override;
  Result<int> attach(const sdk::Request& request, const sdk::Stdio& stdio) override;
};

}  // namespace envd::plugins
