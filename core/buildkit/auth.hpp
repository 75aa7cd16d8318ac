// Auth: registry credentials for the daemon's pulls and pushes, answered from
// the user's Docker configuration the way the docker CLI reads it. The daemon
// calls /moby.filesync.v1.Auth/Credentials with a bare registry host
// ("registry-1.docker.io", "ghcr.io", "localhost:5000").
//
// Lookup for a host, in $DOCKER_CONFIG/config.json (default
// ~/.docker/config.json):
//  1. The config key: Docker Hub's hosts (registry-1.docker.io, docker.io,
//     index.docker.io) use "https://index.docker.io/v1/", others host[:port].
//  2. credHelpers[key] (or an entry whose key names the same host), else
//     credsStore: runs `docker-credential-<name> get` with the key on stdin
//     and reads {"Username","Secret"}; Username "<token>" means the Secret is
//     an identity token. A helper answering "credentials not found" means none.
//  3. Otherwise (or if the helper has none) auths[key], also matching keys
//     written as "https://host/..." or "http://host": "identitytoken" wins,
//     else "auth" (base64 "user:password"), else "username"/"password".
//     ("registrytoken" is not used: BuildKit has no field for it.)
// An identity token is returned as Username "" and Secret <token>.
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
#include "envd/result.hpp"

namespace envd::buildkit {

struct RegistryCredentials {
  std::string username;  // "" with a non-empty secret: secret is an identity token
  std::string secret;

  bool empty() const { return username.empty() && secret.empty(); }
};

struct AuthOptions {
  // Directory holding config.json. Empty: $DOCKER_CONFIG, else $HOME/.docker.
  std::filesystem::path config_dir;
  // How long a credential helper may run before it is killed.
  std::chrono::milliseconds helper_timeout{std::chrono::seconds(30)};
};

// The Docker config key for a registry host: "https://index.docker.io/v1/"
// for Docker Hub's hosts, else the host unchanged.
std::string docker_config_key(std::string_view host);

// Looks up the credentials for `host` as described above. A missing config
// file is no credentials; a corrupt one, an unusable helper or a malformed
// entry is an error ("docker config '/p/config.json' ...").
Result<RegistryCredentials> lookup_registry_credentials(const AuthOptions& options,
                                                        std::string_view host);

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
