// Registry credentials from the user's Docker configuration, read the way the
// docker CLI reads them, for everything that pulls or pushes: the core's
// session Auth service and image push, and drivers that pull a daemon image.
//
// Lookup for a registry host ("registry-1.docker.io", "ghcr.io",
// "localhost:5000") in $DOCKER_CONFIG/config.json (default ~/.docker):
//  1. The config key: Docker Hub's hosts (registry-1.docker.io, docker.io,
//     index.docker.io) use "https://index.docker.io/v1/", others host[:port].
//  2. credHelpers[key] (or an entry whose key names the same host), else
//     credsStore: runs `docker-credential-<name> get` with the key on stdin
//     and reads {"Username","Secret"}; Username "<token>" means the Secret is
//     an identity token. A helper answering "credentials not found" means none.
//  3. Otherwise (or if the helper has none) auths[key], also matching keys
//     written as "https://host/..." or "http://host": "identitytoken" wins,
//     else "auth" (base64 "user:password"), else "username"/"password".
// An identity token is returned as username "" and secret <token>.
//
// Thread-safety: every call reads the configuration afresh; calls may run
// concurrently.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "envd/result.hpp"

namespace envd::sdk {

struct RegistryCredentials {
  std::string username;  // "" with a non-empty secret: secret is an identity token
  std::string secret;

  bool empty() const { return username.empty() && secret.empty(); }
};

struct RegistryAuthOptions {
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
// entry is an error naming the file ("docker config '/p/config.json' ...").
Result<RegistryCredentials> lookup_registry_credentials(const RegistryAuthOptions& options,
                                                        std::string_view host);

// The Docker Engine API's X-Registry-Auth value for `credentials`: URL-safe
// base64 of {"username","password","serveraddress"} (or
// {"identitytoken","serveraddress"}), and "e30=" ("{}") when they are empty.
std::string registry_auth_header(const RegistryCredentials& credentials,
                                 std::string_view server_address);

// lookup_registry_credentials for `host`, then registry_auth_header with the
// host's config key: what a pull or push of an image on `host` sends.
Result<std::string> registry_auth_header_for(std::string_view host,
                                             const RegistryAuthOptions& options = {});

}  // namespace envd::sdk
