#include "cli/duration_flag.hpp"

#include <string>

#include "util/duration.hpp"
#include "util/text.hpp"

namespace envd::cli {

namespace {

CLI::Validator duration_at_least(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](const std::string& text) {
        auto parsed = util::parse_duration(text, "the flag");
        const std::string quoted = "'" + util::printable(text, 40) + "'";
        if (!parsed) {
          return quoted + " is not a duration (e.g. 30s, 1m30s, 500ms; at most 277777h)";
        }
        // "0", or less than the millisecond a deadline counts in ("1ns").
        if (!zero_allowed && parsed->count() <= 0) {
          return quoted + " is not a duration of 1ms or more";
        }
        return std::string();
      },
      "", "duration");
}

}  // namespace

CLI::Validator positive_duration() { return duration_at_least(false); }

CLI::Validator duration_value() { return duration_at_least(true); }

}  // namespace envd::cli
