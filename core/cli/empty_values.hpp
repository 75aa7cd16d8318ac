// An empty flag value is a mistake unless the flag gives '' a meaning.
// `--file ''` or `--connect-timeout "$UNSET"` used to be taken as the flag
// left out, so a script's unset variable silently built the wrong file or
// waited the default time. Now every option that takes a value refuses ''
// before anything runs, except the few whose help says what '' does
// (`context update --runner-address ''` removes the address).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace envd::cli {

// Marks `option` as one whose empty value means something; returns it, for
// chaining at the option's definition.
CLI::Option* allow_empty(CLI::Option* option);

// Drops every mark not yet walked (made for an app refuse_empty_values never
// saw), so that none is mistaken for an option of the next app. Called before
// an app's commands are registered.
void forget_empty_marks();

// Adds the check to every option of `app` and of its subcommands, at any
// depth, that takes a value and is not marked: positional arguments are left
// alone ("envd run IMAGE -- sh -c ''" passes an empty word on purpose), and
// so are flags. Call it once the commands are registered: it also forgets the
// marks (they name options of this app only).
void refuse_empty_values(CLI::App& app);

// For a positional argument that names something (an environment): '' is
// refused as the command line is read, "names: '' is not an environment
// name", exit 2, as an empty flag value is.
CLI::Validator non_empty_word(const std::string& what);

// The command line with each "--flag=" (nothing after the '=') before any
// "--" split into "--flag" and "": CLI11 takes the word after "--flag=" as
// its value, so `--tag="$UNSET" sub` tagged the build `sub` and built '.'.
// Split, an empty value is refused or accepted as "--flag ''" is.
std::vector<std::string> split_empty_assignments(int argc, const char* const* argv);

}  // namespace envd::cli
