// Auth: the session service that answers the daemon's registry credential
// requests (/moby.filesync.v1.Auth/Credentials, with a bare registry host such
// as "registry-1.docker.io" or "localhost:5000") from the user's Docker
// configuration, looked up by <envd/registry_auth.hpp>.
//
// The daemon treats a Credentials error as fatal for the pull, so "nothing
// configured" and every local failure (missing or corrupt config, failing
// helper) answer an empty response; failures are reported once per provider
// as a one-line warning on stderr. FetchToken, GetTokenAuthority and
// VerifyTokenAuthority answer UNIMPLEMENTED (the daemon then falls back to
// Credentials) and are not advertised.
//
// Thread-safety: credentials() and the service may run concurrently; the
// configuration is read afresh on every call.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "buildkit/attachable.hpp"
#include "envd/registry_auth.hpp"
#include "envd/result.hpp"

namespace envd::buildkit {

using sdk::RegistryCredentials;
using AuthOptions = sdk::RegistryAuthOptions;
using sdk::docker_config_key;
using sdk::lookup_registry_credentials;

class AuthProvider : public Attachable {
 public:
  explicit AuthProvider(AuthOptions options = {});
  ~AuthProvider() override;
  AuthProvider(const AuthProvider&) = delete;
  AuthProvider& operator=(const AuthProvider&) = delete;

  // What Credentials answers for `host`: empty when none are configured or
  // the lookup failed (the failure is warned about once).
  RegistryCredentials credentials(std::string_view host) const;

  void register_on(grpc::ServerBuilder& builder) override;
  std::vector<std::string> methods() const override;  // {"/moby.filesync.v1.Auth/Credentials"}

 private:
  class Service;
  AuthOptions options_;
  std::unique_ptr<Service> service_;
  mutable std::once_flag warned_;
};

}  // namespace envd::buildkit
