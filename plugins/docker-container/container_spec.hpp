// What the buildkitd container is created with, computed from the context's
// options without I/O: the generated buildkitd.toml, the POST /containers/create
// body, and the labels that later tell whether an existing container still
// matches what the context asks for.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "options.hpp"

namespace envd::plugins::docker_container {

// Labels recorded on the container.
inline constexpr const char* kImageLabel = "dev.envd.builder.image";
inline constexpr const char* kConfigLabel = "dev.envd.builder.config-sha256";
inline constexpr const char* kContextLabel = "dev.envd.context";

// Where the config and the state volume live inside the container.
inline constexpr const char* kConfigPath = "/etc/buildkit/buildkitd.toml";
inline constexpr const char* kStateDir = "/var/lib/buildkit";
// The rootless image runs as `user` and keeps its state in its home.
inline constexpr const char* kRootlessStateDir = "/home/user/.local/share/buildkit";
// Where buildkitd makes its socket (its default address); a host directory
// mounted there shows the socket to this machine.
inline constexpr const char* kSocketDir = "/run/buildkit";
inline constexpr const char* kSocketName = "buildkitd.sock";

struct ContainerSpec {
  std::string name;         // container name
  std::string image;        // image reference
  std::string volume;       // named volume holding the BuildKit state, <name>_state
  std::string config_host;  // host path of the buildkitd.toml bind-mounted read-only;
                            // empty: put_config() copies it in before the start
  // Host directory bind-mounted at kSocketDir, where buildkitd's socket
  // appears to this machine; empty: none (dial through an exec only).
  std::string socket_dir_host;
  std::string config_sha256;
  std::map<std::string, std::string> labels;
  std::string create_json;  // the body of POST /containers/create
};

// The buildkitd.toml envd writes when the user gave no `config`: comments, and
// worker.oci.gckeepstorage when gc-keep-storage is set.
std::string generated_config(const ContainerOptions& options);

// The image to use: `override_image` (--buildkitd-image) if not empty, else
// the `image` option, else the pinned default (the rootless one if rootless).
std::string effective_image(const ContainerOptions& options, const std::string& override_image);

// The spec of container `name` for `context`. `config_host` is the host path of
// the config file to mount (empty: none, the config is copied in),
// `config_text` its content (hashed into a label). `socket_dir_host`, when
// not empty, is mounted at kSocketDir. Like the config's mount, it is left out
// of the hash: a container made without it is not stale, it is only dialled
// the slower way.
ContainerSpec make_spec(const std::string& name, const std::string& context,
                        const ContainerOptions& options, const std::string& image,
                        const std::string& config_host, const std::string& config_text,
                        const std::string& socket_dir_host = "");

// Whether one of the user's mounts covers kSocketDir, its parents or what is
// below it: then envd adds no mount there (Docker refuses two mounts on one
// target, and the user's wins).
bool mounts_over_socket_dir(const ContainerOptions& options);

// Why an existing container with `labels` (its Config.Labels) does not match
// `spec`, or nullopt when it does.
std::optional<std::string> stale_reason(const std::map<std::string, std::string>& labels,
                                        const ContainerSpec& spec);

// An image reference split for POST /images/create: "repo" and "tag" (or a
// digest in "tag", with '@' kept out); a missing tag is "latest".
struct ImageRef {
  std::string repository;
  std::string tag;
  std::string registry;  // e.g. "docker.io", "127.0.0.1:5000"
};
ImageRef split_image(const std::string& reference);

// The lowercase hex SHA-256 of `data`.
std::string sha256_hex(const std::string& data);

}  // namespace envd::plugins::docker_container
