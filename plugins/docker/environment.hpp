// The docker runner's data: the environment spec a create request carries, the
// Engine API container it becomes, and the environment object the runner
// answers with. Pure: no Engine calls, so it is tested without one.
//
// The spec (args.spec of a create request, every key optional but "image"):
//   {"name": "dev", "image": "ubuntu:22.04", "env": {"K": "V"},
//    "ports": [{"host_ip": "", "host_port": 8080, "container_port": 80,
//               "protocol": "tcp"}],
//    "volumes": [{"type": "bind" | "volume", "source": "/srv/data" | "cache" | "",
//                 "target": "/data", "read_only": false}],
//    "cpus": 1.5, "memory": 536870912, "gpus": "all" | "2" | "device=0,1" | ... (gpu_request.hpp),
//    "shm_size": 2147483648, "cpuset": "0-3", "cap_add": ["SYS_PTRACE"],
//    "restart": "always" | "on-failure:3" | ..., "network": "",
//    "command": ["sh"], "force": false}
//
// An environment (create and inspect answer one, list an array of them):
//   {"name", "id", "image", "status", "exit_code", "error", "created",
//    "started", "endpoint", "ports": [...as above], "volumes": [...as above],
//    "env": {...},
//    "resources": {"cpus", "memory", "gpus", "shm_size", "cpuset"},
//    "labels": {...}, "restart", "restarts", "network", "command": [...],
//    "cap_add": [...]}
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "envd/result.hpp"

namespace envd::plugins::docker_runner {

// Upstream envd's label names: every environment container carries the first
// (its environment's name), which is how list tells envd's containers apart.
inline constexpr const char* kNameLabel = "ai.tensorchord.envd.name";
inline constexpr const char* kVendorLabel = "ai.tensorchord.envd.vendor";
// One create's own token, so that envd can tell the container it asked for
// from one another envd made under the same name meanwhile; not shown.
inline constexpr const char* kCreationLabel = "ai.tensorchord.envd.creation";
inline constexpr const char* kVendor = "envd";
// /dev/shm's size when the spec gives none: upstream envd's 2048 MiB (the
// Engine's own 64 MiB is too small for a data loader's worker processes);
// the envd-server runner asks the same.
inline constexpr std::int64_t kDefaultShmSize = std::int64_t{2048} * 1024 * 1024;

struct PortBinding {
  std::string host_ip;  // "" for every address
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";  // tcp, udp or sctp
};

// A bind mount of a host directory (which must exist: unlike docker run -v,
// the Engine is asked for a mount, and creates no directory as root), or a
// named volume, or an anonymous one (source "").
struct Mount {
  std::string type;  // "bind" or "volume"
  std::string source;
  std::string target;
  bool read_only = false;
};

struct Spec {
  std::string name;
  std::string image;
  std::map<std::string, std::string> env;
  std::vector<PortBinding> ports;
  std::vector<Mount> volumes;
  double cpus = 0;                  // 0: no limit
  std::int64_t memory = 0;          // bytes, 0: no limit
  boost::json::array gpu_requests;  // the Engine's DeviceRequests for "gpus"; empty: none
  std::int64_t shm_size = 0;        // bytes of /dev/shm, 0: kDefaultShmSize
  std::string cpuset;               // "": every CPU
  std::vector<std::string> cap_add;
  std::string restart = "always";  // a policy name
  int max_retries = 0;             // on-failure's, 0: no limit
  std::string network;             // "": the Engine's default
  std::vector<std::string> command;
  bool force = false;
};

// Parses and checks the request's args JSON ({"spec": {...}}). A missing name
// is derived from the image (default_name). Errors are Errc::invalid_argument
// naming the field.
Result<Spec> parse_spec(const std::string& args_json);

// The name an environment of `image` gets without --name: the image's last
// path component without tag or digest, reduced to Docker's name characters
// and cut to 30 characters, as upstream envd names by directory.
std::string default_name(const std::string& image);

// The body of POST /containers/create for `spec` (labelled for envd; with
// a TTY and open stdin, so a shell as the image's command keeps running).
boost::json::object container_body(const Spec& spec);

// The environment object for the answer of GET /containers/{id}/json.
boost::json::object environment_of(const boost::json::object& container);

// Whether the inspected container is one of envd's environments.
bool is_environment(const boost::json::object& container);

}  // namespace envd::plugins::docker_runner
