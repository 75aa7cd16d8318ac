#include "cli/command_groups.hpp"

#include <fmt/core.h>

#include <string>
#include <vector>

#include "cli/empty_values.hpp"
#include "util/data_out.hpp"

namespace envd::cli {
namespace {

// `envd help [COMMAND...]`, listed with the others; main() runs it as
// `envd COMMAND... --help` (help_as_flag), so this command's own callback is
// reached only if that rewrite was not made.
void add_help_command(CLI::App& app, Invocation& /*invocation*/, Action& action) {
  CLI::App* help = app.add_subcommand(
      "help", "Show a command's help: envd help context create is envd context create --help");
  help->add_option("command", "The command whose help to show")->expected(0, -1);
  help->callback([&app, &action] {
    action = [&app] {
      fmt::print(util::data_out(), "{}", app.help());
      return Status{};
    };
  });
}

// In the order `envd --help` lists them. The CLI test
// EveryCommandIsReachedThroughItsGroup keeps the words true.
const std::array<CommandEntry, 9> kGroups = {{
    {{"context"}, add_context_commands},
    {{"build"}, add_build_commands},
    {{"builder", "bootstrap", "prune"}, add_builder_commands},
    {{"run", "up", "envs", "attach", "ssh", "down"}, add_runner_commands},
    {{"plugin"}, add_plugin_commands},
    {{"version"}, add_version_command},
    {{"completion"}, add_completion_commands},
    {{"login", "logout"}, add_login_commands},
    {{"help"}, add_help_command},
}};

}  // namespace

bool asks_for_help(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word == "--") return false;
    if (word == "-h" || word == "--help") return true;
  }
  return false;
}

CommandWords command_words(int argc, const char* const* argv) {
  CommandWords words;
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word == "-c" || word == "--context" || word == "--buildkitd-image") {
      ++i;
      continue;
    }
    if (!word.empty() && word.front() == '-') continue;
    if (words.command.empty()) {
      words.command = word;
      continue;
    }
    words.subcommand = word;
    break;
  }
  return words;
}

void add_named(CLI::App& parent, Invocation& invocation, Action& action,
               std::span<const CommandEntry> entries, std::string_view word) {
  if (!word.empty()) {
    for (const CommandEntry& entry : entries) {
      for (std::string_view name : entry.words) {
        if (name == word) {
          entry.add(parent, invocation, action);
          return;
        }
      }
    }
  }
  for (const CommandEntry& entry : entries) entry.add(parent, invocation, action);
  // A word that names a command only now is missing from `entries`: nothing
  // breaks, every run of it just registers everything. Said, so tests see it.
  if (word.empty()) return;
  auto subcommands =
      parent.get_subcommands([word](CLI::App* sub) { return sub->check_name(std::string(word)); });
  if (!subcommands.empty()) {
    warn("the command table misses '" + std::string(word) + "' (a slower start; please report it)");
  }
}

std::vector<std::string> help_as_flag(int argc, const char* const* argv) {
  if (asks_for_help(argc, argv) || command_words(argc, argv).command != "help") return {};
  std::vector<std::string> words(argv, argv + argc);
  for (auto word = words.begin() + 1; word != words.end(); ++word) {
    if (*word == "-c" || *word == "--context" || *word == "--buildkitd-image") {
      if (++word == words.end()) break;
      continue;
    }
    if (*word == "help") {
      word = words.erase(word);
      // `envd help -- build`: the words after `--` are still command words.
      if (word != words.end() && *word == "--") word = words.erase(word);
      // Only command words follow: `envd help --bogus` is help's own error.
      for (auto rest = word; rest != words.end(); ++rest) {
        if (rest->empty() || rest->front() == '-') return {};
      }
      break;
    }
  }
  words.emplace_back("--help");
  return words;
}

void add_commands(CLI::App& app, Invocation& invocation, Action& action, int argc,
                  const char* const* argv) {
  // Help may be the top level's ("envd --help context"), which lists every command.
  CommandWords words;
  if (!asks_for_help(argc, argv)) words = command_words(argc, argv);
  invocation.subcommand_word = words.subcommand;
  // `help` names other commands (completed by `envd __complete help ...`):
  // every one is registered, as for the top level's help.
  if (words.command == "help") words = CommandWords{};
  forget_empty_marks();
  add_named(app, invocation, action, kGroups, words.command);
  refuse_empty_values(app);
}

}  // namespace envd::cli
