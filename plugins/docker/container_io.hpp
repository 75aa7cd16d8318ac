// The docker runner's streams: an environment's logs, and an interactive
// shell in it through an Engine API exec (no sshd needed in the image).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "envd/docker_engine.hpp"
#include "envd/plugin.hpp"

namespace envd::plugins::docker_runner {

struct LogsOptions {
  bool follow = false;      // until the container stops or the user cancels
  std::optional<int> tail;  // the last K lines; nullopt: all
  bool tty = true;          // the container has a TTY: one raw stream, else frames
};

// GET /containers/{id}/logs, written to stdio.out_fd (stderr frames of a
// container without a TTY to stdio.err_fd).
Status stream_logs(sdk::DockerEngine& engine, const std::string& id, const LogsOptions& options,
                   const sdk::Stdio& stdio, sdk::Deadline deadline);

// Runs `shell` in the running container `id` through POST /containers/{id}/exec
// and /exec/{id}/start (hijacked), with a TTY when stdio is a terminal (raw
// mode, the window size at start and on every change), else with stdin, stdout
// and stderr as separate streams. `deadline` bounds starting the exec; the
// session itself lasts until the shell exits or the user cancels. Returns the
// shell's exit code (ExitCode of GET /exec/{id}/json).
Result<int> attach_shell(sdk::DockerEngine& engine, const std::string& id,
                         const std::vector<std::string>& shell, const sdk::Stdio& stdio,
                         sdk::Deadline deadline);

}  // namespace envd::plugins::docker_runner
