// Which commands a run of envd registers. CLI11 builds every option of every
// command it is given, and a run needs only its own: `envd context ls`, run on
// every TAB of shell completion, spent a fifth of its time building the flags
// of build, run and the rest. So a run registers the one group that holds its
// command, and the context group the one subcommand named (its create and
// update alone have more flags than ls costs to list). Help, no command and an
// unknown word get everything, so whatever CLI11 lists or reports is complete.
#pragma once

#include <CLI/CLI.hpp>
#include <array>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.hpp"

namespace envd::cli {

// The first two words of the command line that are neither options nor the
// value of a top-level option that takes one (main.cpp's -c/--context and
// --buildkitd-image): the command's name and the word after it (a group's
// subcommand), each empty when missing.
struct CommandWords {
  std::string_view command;
  std::string_view subcommand;
};
CommandWords command_words(int argc, const char* const* argv);

// Whether the command line asks for help (-h or --help before any "--").
bool asks_for_help(int argc, const char* const* argv);

// `envd help [COMMAND...]` as the docker CLI takes it: the words of
// `envd [COMMAND...] --help` (global options kept in place), or none when
// the command line is not a help command.
std::vector<std::string> help_as_flag(int argc, const char* const* argv);

// Registers the commands a run with these arguments can reach (for
// `envd __complete WORD... PARTIAL`: argv from "__complete", without PARTIAL).
// The group's own add function learns its subcommand from
// Invocation::subcommand_word.
void add_commands(CLI::App& app, Invocation& invocation, Action& action, int argc,
                  const char* const* argv);

// A command (or a group of them) and the names and aliases it registers (the
// rest empty).
struct CommandEntry {
  std::array<std::string_view, 6> words;
  void (*add)(CLI::App& parent, Invocation& invocation, Action& action);
};

// Calls the add function of the entry naming `word`, or of every entry when
// none does (an empty word, help, a misspelling).
void add_named(CLI::App& parent, Invocation& invocation, Action& action,
               std::span<const CommandEntry> entries, std::string_view word);

}  // namespace envd::cli
