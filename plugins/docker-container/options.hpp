// The docker-container builder's driver options (`envd context create
// --builder-opt KEY=VALUE`): validated without I/O, and parsed into the
// settings the container is created with.
//
// List options (cap-add, cap-drop, security-opt, device, mount, env) hold
// comma-separated values: the core joins repeated --builder-opt KEY=... with
// ','. `config` is a file option: the core stores a copy of the user's file and
// hands the driver the absolute path of the copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envd/plugin.hpp"

namespace envd::plugins::docker_container {

// Pinned defaults; `image` or --buildkitd-image override them.
inline constexpr const char* kDefaultImage = "docker.io/moby/buildkit:v0.19.0";
inline constexpr const char* kDefaultRootlessImage = "docker.io/moby/buildkit:v0.19.0-rootless";

// One `mount` entry, SRC:DST[:ro|rw]. A SRC that is not an absolute path is a
// named volume.
struct MountSpec {
  std::string source;
  std::string target;
  bool read_only = false;
  bool is_volume() const { return source.empty() || source.front() != '/'; }
};

// One `device` entry, HOST[:CONTAINER[:PERMISSIONS]].
struct DeviceSpec {
  std::string host;
  std::string container;
  std::string permissions = "rwm";
};

struct ContainerOptions {
  std::string image;  // empty: the pinned default (rootless or not)
  bool privileged = true;
  bool rootless = false;
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  // As the Engine takes them (KEY=VALUE), except that seccomp=/PATH still
  // names the profile's file; systempaths=unconfined is not among them.
  std::vector<std::string> security_opt;
  bool unconfined_system_paths = false;  // systempaths=unconfined: no masked or read-only paths
  std::vector<DeviceSpec> devices;
  std::vector<MountSpec> mounts;
  std::string network;                           // empty: the engine's default
  std::vector<std::string> env;                  // K=V
  std::vector<std::string> daemon_flags;         // buildkitd-flags, split like a shell would
  std::optional<std::uint64_t> gc_keep_storage;  // bytes
  std::string config_file;                       // the stored copy of the user's buildkitd.toml
};

// The option keys, in the order error messages list them.
const std::vector<std::string_view>& option_keys();

// Validates `options` and returns their stored form (booleans "true"/"false",
// list items trimmed). Errc::invalid_argument naming the key and the rule.
Result<sdk::Options> normalize(const sdk::Options& options);

// Parses normalised options. Errors as normalize().
Result<ContainerOptions> parse(const sdk::Options& options);

// "10GB", "512MiB", "1.5G", "1048576" (bytes) -> bytes. Decimal (kB, MB, GB,
// TB) and binary (KiB, MiB, GiB, TiB) units, case-insensitive; a bare K/M/G/T
// means the binary unit, as Docker's --memory does. Errc::invalid_argument
// naming `what`.
Result<std::uint64_t> parse_size(std::string_view text, std::string_view what);

// Splits buildkitd-flags like a POSIX shell would split words (whitespace,
// single and double quotes, backslash escapes); no expansion.
Result<std::vector<std::string>> split_words(std::string_view text, std::string_view what);

}  // namespace envd::plugins::docker_container
