#include "cli/duration_flag.hpp"

#include <string>

#include "util/duration.hpp"
#include "util/text.hpp"

namespace envd::cli {

CLI::Validator positive_duration() {
  return CLI::Validator(
      [](const std::string& text) {
        auto parsed = util::parse_duration(text, "the flag");
        const std::string quoted = "'" + util::printable(text, 40) + "'";
        if (!parsed) {
          return quoted + " is not a duration (e.g. 30s, 1m30s, 500ms; at most 277777h)";
        }
        // "0", or less than the millisecond a deadline counts in ("1ns").
        if (parsed->count() <= 0) return quoted + " is not a duration of 1ms or more";
        return std::string();
      },
      "", "duration");
}

}  // namespace envd::cli
