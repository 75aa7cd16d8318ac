// Text from outside envd (file contents, archive entry names, environment
// variables, daemons' answers) made safe to show: the SDK's printable(), under
// the name the core has always used, and printable_lines() for what may span
// lines. Every message envd writes to stderr goes through one of them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "envd/text.hpp"

namespace envd::util {

using sdk::printable;

// As printable(), line by line: the newlines between lines are kept (some
// messages are several lines on purpose, such as an environment's last log
// lines), every other control character and escape sequence is escaped.
inline std::string printable_lines(std::string_view text) {
  std::string out;
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = text.find('\n', start);
    out += printable(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) return out;
    out += '\n';
    start = nl + 1;
  }
}

}  // namespace envd::util
