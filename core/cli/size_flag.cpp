#include "cli/size_flag.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>

#include "util/text.hpp"

namespace envd::cli {

Result<std::int64_t> parse_size_flag(const std::string& text, const std::string& flag) {
  auto fail = [&] {
    return Error(Errc::invalid_argument,
                 "invalid " + flag + " '" + util::printable(text) +
                     "': expected a size such as 10GB, 512MiB or a number of bytes");
  };
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) != 0 || text[digits] == '.')) {
    ++digits;
  }
  // At least one digit, at most one '.': "." and "1.2.3" are not numbers.
  if (digits == 0 || text.find('.', text.find('.') + 1) < digits ||
      text.find_first_of("0123456789") >= digits) {
    return fail();
  }
  // strtod, not stod: a number too large for a double is HUGE_VAL, not an
  // exception, and is refused below.
  double number = std::strtod(text.substr(0, digits).c_str(), nullptr);
  std::string unit;
  for (char c : text.substr(digits)) {
    if (c != ' ') unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const std::pair<const char*, double> units[] = {{"", 1},
                                                  {"b", 1},
                                                  {"kb", 1e3},
                                                  {"mb", 1e6},
                                                  {"gb", 1e9},
                                                  {"tb", 1e12},
                                                  {"k", 1024.0},
                                                  {"kib", 1024.0},
                                                  {"m", 1048576.0},
                                                  {"mib", 1048576.0},
                                                  {"g", 1073741824.0},
                                                  {"gib", 1073741824.0},
                                                  {"t", 1099511627776.0},
                                                  {"tib", 1099511627776.0}};
  for (const auto& [name, factor] : units) {
    if (unit != name) continue;
    double bytes = std::round(number * factor);
    // 2^63 itself is out of range: the largest int64 is 2^63 - 1.
    if (!(bytes < static_cast<double>(std::numeric_limits<std::int64_t>::max()))) {
      return Error(Errc::invalid_argument, "invalid " + flag + " '" + util::printable(text) +
                                               "': larger than the 8 EiB a size can be");
    }
    return static_cast<std::int64_t>(bytes);
  }
  return fail();
}

CLI::Validator size_value() {
  return CLI::Validator(
      [](const std::string& text) {
        auto parsed = parse_size_flag(text, "size");
        if (parsed) return std::string();
        // Said as CLI11 puts it after the flag, as a bad duration is.
        const std::string quoted = "'" + util::printable(text, 40) + "'";
        if (parsed.error().message().find("larger than") != std::string::npos) {
          return quoted + " is larger than the 8 EiB a size can be";
        }
        return quoted + " is not a size (e.g. 10GB, 512MiB, 2g or a number of bytes)";
      },
      "", "size");
}

}  // namespace envd::cli
