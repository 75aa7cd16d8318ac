// Commands that lend the user's terminal to the runner: `envd envs logs` and
// `envd attach` (alias `envd ssh`); `envd up` attaches through attach_to().
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>

#include "cli/commands.hpp"
#include "cli/invocation.hpp"
#include "cli/runner_target.hpp"

namespace envd::cli {

// Opens a shell in environment `name` (`shell`: a command line split on
// blanks, empty for the runner's default) and sets invocation.exit_code to
// the shell's exit code. `timeout` bounds reaching the shell (0: the default,
// 30s); the session itself has no deadline.
Status attach_to(Invocation& invocation, const RunnerTarget& target, const std::string& name,
                 const std::string& shell,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

// Errc::invalid_argument "standard output is closed, so <what> would be
// lost; ..." when envd started with stdout closed (its stand-in fails every
// write): checked before a command does anything whose output would be lost
// (the logs, a shell, an environment's name), so the work is not done and
// then reported as failed.
Status refuse_closed_stdout(const char* what);

// `logs` under the `envs` group; `attach` (alias `ssh`) on the root.
void add_logs_command(CLI::App& envs, Invocation& invocation, Action& action);
void add_attach_command(CLI::App& app, Invocation& invocation, Action& action);

}  // namespace envd::cli
