#include "cli/command_groups.hpp"

#include <array>

namespace envd::cli {
namespace {

using AddCommands = void (*)(CLI::App&, Invocation&, Action&);

struct CommandGroup {
  // The top-level names and aliases `add` registers (the rest empty); the CLI
  // test EveryCommandIsReachedThroughItsGroup keeps this list true.
  std::array<std::string_view, 6> words;
  AddCommands add;
};

// In the order `envd --help` lists them.
const std::array<CommandGroup, 8> kGroups = {{
    {{"context"}, add_context_commands},
    {{"build"}, add_build_commands},
    {{"builder", "bootstrap", "prune"}, add_builder_commands},
    {{"run", "up", "envs", "attach", "ssh", "down"}, add_runner_commands},
    {{"plugin"}, add_plugin_commands},
    {{"version"}, add_version_command},
    {{"completion"}, add_completion_commands},
    {{"login", "logout"}, add_login_commands},
}};

bool asks_for_help(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word == "--") return false;
    if (word == "-h" || word == "--help") return true;
  }
  return false;
}

}  // namespace

std::string_view command_word(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word == "-c" || word == "--context" || word == "--buildkitd-image") {
      ++i;
      continue;
    }
    if (!word.empty() && word.front() == '-') continue;
    return word;
  }
  return {};
}

void add_commands(CLI::App& app, Invocation& invocation, Action& action, int argc,
                  const char* const* argv) {
  // Help may be the top level's ("envd --help context"), which lists every command.
  std::string_view word = command_word(argc, argv);
  if (!word.empty() && !asks_for_help(argc, argv)) {
    for (const CommandGroup& group : kGroups) {
      for (std::string_view name : group.words) {
        if (name == word) {
          group.add(app, invocation, action);
          return;
        }
      }
    }
  }
  for (const CommandGroup& group : kGroups) group.add(app, invocation, action);
}

}  // namespace envd::cli
