#include "util/duration.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace envd::util {

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return Error(Errc::invalid_argument, "invalid duration '" + std::string(text) + "' in " +
                                             std::string(what) +
                                             ": expected e.g. 10s, 300ms, 1m30s");
  };
  if (text == "0") return std::chrono::milliseconds(0);
  if (text.empty()) return bad();
  double total_ns = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
      ++i;
    }
    if (i == start) return bad();
    double number = 0;
    auto [end, ec] = std::from_chars(text.data() + start, text.data() + i, number);
    if (ec != std::errc() || end != text.data() + i) return bad();
    size_t unit_start = i;
    while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) &&
           text[i] != '.') {
      ++i;
    }
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xc2\xb5s") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "h") {
      scale = 3600e9;
    } else {
      return bad();
    }
    total_ns += number * scale;
  }
  if (!std::isfinite(total_ns) || total_ns > 1e18) return bad();
  // Less than the millisecond a deadline counts in is none: rounded, 500us
  // became 1ms, which the flags' "1ms or more" then took.
  if (total_ns < 1e6) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<long long>(std::llround(total_ns / 1e6)));
}

}  // namespace envd::util
