// The duration flags (--timeout, --connect-timeout) checked as the command
// line is read: a bad value is a usage error (exit 2) that costs no build
// and contacts nothing.
#pragma once

#include <CLI/CLI.hpp>

namespace envd::cli {

// Accepts what util::parse_duration reads ("30s", "1m30s", "500ms") when it
// is 1 ms or more; CLI11 puts the flag's name before the reason ("--timeout:
// '0' is not a duration of 1ms or more").
CLI::Validator positive_duration();

// Any duration util::parse_duration reads, 0 included (--keep-duration 0
// keeps nothing by age).
CLI::Validator duration_value();

}  // namespace envd::cli
