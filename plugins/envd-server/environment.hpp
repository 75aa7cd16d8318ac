// The envd-server runner's data: the environment spec of a create request as
// envd-server's EnvironmentCreateRequest, envd-server's Environment as envd's
// environment object, and the server's error bodies. Pure: no HTTP, so it is
// tested without a server.
//
// The spec (args.spec of a create request; the same keys as the docker
// runner's, "image" required):
//   {"name", "image", "env": {"K": "V"}, "ports": [{"host_ip", "host_port",
//    "container_port", "protocol"}], "cpus": 1.5, "memory": 536870912,
//    "gpus": "2", "restart", "network", "command": [...], "force": false}
// envd-server runs pods, and its runtime reads only the image of a spec: env,
// a command and ports are refused (the pod gets its own variables, the
// image's command, the SSH port and the ports the image's labels declare);
// GPUs are a count; restart and network do not apply. Each is refused with
// Errc::invalid_argument naming the field, rather than dropped.
//
// An environment (what create and inspect answer, list an array of them):
//   {"name", "image", "status" (the phase, lower case: "running",
//    "pending"...), "created" (RFC 3339, UTC), "endpoint"
//    ("<login>/<name>@<host>:<ssh port>", the SSH target), "owner", "command": [...],
//    "env": {...}, "ports": [...], "resources": {"cpus", "memory", "gpus",
//    "shm"}, "labels": {...}, "jupyter_addr", "rstudio_server_addr",
//    "server": <the server's Environment as it answered>}
#pragma once

#include <boost/json.hpp>
#include <string>

#include "envd/result.hpp"

namespace envd::plugins::envd_server {

// Upstream's default shared memory (envd up --shm-size, in MiB).
inline constexpr int kDefaultShmMiB = 2048;

// The SSH port of envd-server's containerssh gateway.
inline constexpr int kSshPort = 2222;

struct CreateBody {
  std::string name;
  boost::json::object body;  // EnvironmentCreateRequest
  bool force = false;
};

// Parses the create args ({"spec": {...}}) into the request body. A missing
// name comes from the image: its last path component without tag or digest,
// reduced to a DNS label (lower-case letters, digits, '-') and cut to 30
// characters, as upstream names environments.
Result<CreateBody> create_body(const std::string& args_json);

// The name an environment of `image` gets without --name ("" if none can be
// made).
std::string default_name(const std::string& image);

// envd's environment object for the server's Environment `env`, reached by
// `login` on `host`, whose SSH gateway listens on `ssh_port`.
boost::json::object environment_of(const boost::json::object& env, const std::string& login,
                                   const std::string& host, int ssh_port = kSshPort);

// The server's explanation of a failed call: the "message" of its error body
// ({"http_status_code","message","request",...}), else the trimmed body, else
// "HTTP status N".
std::string server_message(int status, const std::string& body);

}  // namespace envd::plugins::envd_server
