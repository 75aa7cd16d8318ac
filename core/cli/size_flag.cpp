#include "cli/size_flag.hpp"

#include <cctype>
#include <cmath>
#include <limits>
#include <utility>

namespace envd::cli {

Result<std::int64_t> parse_size_flag(const std::string& text, const std::string& flag) {
  auto fail = [&] {
    return Error(Errc::invalid_argument,
                 "invalid " + flag + " '" + text +
                     "': expected a size such as 10GB, 512MiB or a number of bytes");
  };
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) != 0 || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0 || text.find('.', text.find('.') + 1) < digits) return fail();
  double number = std::stod(text.substr(0, digits));
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
    if (bytes > static_cast<double>(std::numeric_limits<std::int64_t>::max())) return fail();
    return static_cast<std::int64_t>(bytes);
  }
  return fail();
}

}  // namespace envd::cli
