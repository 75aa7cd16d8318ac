// The Engine API calls the docker-container builder makes: inspecting,
// creating and starting its container, pulling its image with progress and
// registry credentials, reading its logs, and running buildctl in it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "envd/docker_engine.hpp"

namespace envd::plugins::docker_container {

// What GET /containers/{name}/json says (the fields the driver uses).
struct ContainerState {
  std::string id;
  std::string status;  // created, running, paused, restarting, removing, exited, dead
  int exit_code = 0;
  std::string error;  // State.Error, e.g. why the runtime could not start it
  std::string image;  // Config.Image
  std::map<std::string, std::string> labels;
  // State.StartedAt; nullopt when it never started or the time is not
  // RFC 3339 in UTC, as the Engine writes it.
  std::optional<std::chrono::system_clock::time_point> started_at;
  // The host directory bind-mounted at kSocketDir, or "".
  std::string socket_dir;
  // The host file bind-mounted at kConfigPath, or "".
  std::string config_source;
};

// "2026-12-05T10:45:03.123456789Z" (the fraction is dropped), or nullopt;
// Go's zero time, which the Engine gives a container that never started, too.
std::optional<std::chrono::system_clock::time_point> parse_engine_time(std::string_view text);

// The container, or nullopt when there is none of that name (one the Engine
// finds by an id or id prefix equal to `name` is not it). Whoever acts on it
// afterwards acts by its id.
Result<std::optional<ContainerState>> inspect_container(sdk::DockerEngine& engine,
                                                        const std::string& name,
                                                        sdk::Deadline deadline);

// Whether the engine has `image` (GET /images/{image}/json).
Result<bool> have_image(sdk::DockerEngine& engine, const std::string& image,
                        sdk::Deadline deadline);

// Pulls `image`, reporting progress through sdk::report_progress and sending
// the credentials of the docker CLI's config.json ($DOCKER_CONFIG or
// ~/.docker) for its registry, if any.
Status pull_image(sdk::DockerEngine& engine, const std::string& image, sdk::Deadline deadline);

// have_image(), then pull_image() unless it has it, on the one deadline.
Status ensure_image(sdk::DockerEngine& engine, const std::string& image, sdk::Deadline deadline);

// The last `lines` lines of the container's stdout and stderr, in order, each
// without its '\n'; the Engine's error when they cannot be read.
Result<std::vector<std::string>> container_logs(sdk::DockerEngine& engine, const std::string& name,
                                                int lines, sdk::Deadline deadline);

struct ExecOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Copies `text` into the created, not yet started container as kConfigPath
// (mode 0444) through PUT /containers/{name}/archive: how the config reaches
// a container on an Engine that does not share this machine's disk.
Status put_config(sdk::DockerEngine& engine, const std::string& container, const std::string& text,
                  sdk::Deadline deadline);

// Runs `cmd` in the container to its end (no stdin) and collects its output.
Result<ExecOutput> exec_capture(sdk::DockerEngine& engine, const std::string& container,
                                const std::vector<std::string>& cmd, sdk::Deadline deadline);

// What the last dial-stdio of this process said: its exec and, once its stream
// ended, its stderr (or its stdout when that was an error text), as one line.
// The driver object owns it (it lives until the process exits) and shares it
// with the relay of each dial, whose thread records the end; shared, so that
// whichever of the two goes last at exit, the record is still there for the
// other. Thread-safe.
class DialLog {
 public:
  struct Entry {
    std::string exec_id;  // "" before the first dial
    std::string said;
  };

  void remember(const std::string& exec_id, const std::string& said);
  Entry last() const;

 private:
  mutable std::mutex mutex_;
  Entry last_;  // guarded by mutex_
};

// Starts `buildctl dial-stdio` in the container and returns one end of a
// socketpair carrying BuildKit's gRPC stream: a relay (sdk::Relay, kept by the
// module's sdk::relay_registry()) copies stdout frames to it and its bytes to
// the process's stdin, until either side closes, and records in `log` what the
// process said. A process that exits at once fails the call with its exit code
// and stderr.
Result<int> dial_stdio(sdk::DockerEngine& engine, const std::string& container,
                       sdk::Deadline deadline, const std::shared_ptr<DialLog>& log);

// Why the last dial-stdio stream in `log` ended, as one line ("buildctl
// dial-stdio exited with 127: <what it said>"), or "" when it did not fail:
// the reason when BuildKit's stream closed right after dial() returned.
std::string last_dial_failure(sdk::DockerEngine& engine, const DialLog& log,
                              sdk::Deadline deadline);

}  // namespace envd::plugins::docker_container
