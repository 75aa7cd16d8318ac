// Flags whose value is one of a listed few (--format, --progress, build's
// --network), checked as the command line is read: a value outside them is
// a usage error (exit 2) that contacts nothing, as the duration flags are.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace envd::cli {

// Accepts exactly one of `choices`; CLI11 puts the flag's name before the
// reason ("--format: 'yaml' is not one of table or json").
CLI::Validator one_of(std::vector<std::string> choices);

}  // namespace envd::cli
