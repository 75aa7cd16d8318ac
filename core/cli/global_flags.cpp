#include "cli/global_flags.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "context/resolve.hpp"

namespace envd::cli {
namespace {

// The commands that work through the context's builder: each resolves the
// builder target, where --buildkitd-image is applied (builder_target.cpp).
constexpr std::array<std::string_view, 5> kBuilderCommands = {"build", "up", "bootstrap", "builder",
                                                              "prune"};

// The commands that resolve the context themselves, and so report a
// --context that names none: every builder and runner command, the login
// commands, `context show` and `context ls` (which warns and lists).
constexpr std::array<std::string_view, 12> kContextCommands = {
    "build", "up",   "bootstrap", "builder", "prune", "run",
    "envs",  "down", "attach",    "ssh",     "login", "logout"};

bool among(std::string_view word, auto const& words) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

std::string shown_command(const std::vector<std::string>& command) {
  std::string shown = "envd";
  for (const std::string& word : command) shown += " " + word;
  return shown;
}

}  // namespace

std::vector<std::string> parsed_command(const CLI::App& app) {
  std::vector<std::string> command;
  auto parsed = app.get_subcommands();
  while (!parsed.empty()) {
    command.push_back(parsed.front()->get_name());
    parsed = parsed.front()->get_subcommands();
  }
  return command;
}

bool uses_builder(const std::vector<std::string>& command) {
  return !command.empty() && among(command.front(), kBuilderCommands);
}

std::string unused_buildkitd_image(const Invocation& invocation,
                                   const std::vector<std::string>& command) {
  if (invocation.buildkitd_image.empty() || command.empty()) return {};
  if (uses_builder(command)) return {};
  return "--buildkitd-image is for the commands that use a builder (build, up, bootstrap, "
         "builder, prune), not '" +
         shown_command(command) + "'";
}

Status check_context_flag(const Invocation& invocation, const std::vector<std::string>& command) {
  if (!invocation.context_flag || command.empty()) return {};
  if (among(command.front(), kContextCommands)) return {};
  if (command.front() == "context" && command.size() > 1 &&
      (command[1] == "show" || command[1] == "ls")) {
    return {};
  }
  auto store = invocation.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  // Found, or the error every command that resolves the context gives.
  auto resolved = context::resolve_context(*list, invocation.context_flag);
  if (!resolved) return resolved.error();
  return {};
}

}  // namespace envd::cli
