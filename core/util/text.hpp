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

// As printable(), but a message's own continuation lines are kept: some
// messages are several lines on purpose (an environment's last log lines),
// and those lines are always indented by two spaces. A newline followed by
// anything else came from a value the message quotes (a name, a path, an
// option typed with a newline in it) and is escaped like every other control
// character, so the message stays one line and nothing it quotes can start a
// line of its own at the left margin ("envd: error: ..." looks like envd's).
inline std::string printable_lines(std::string_view text) {
  std::string out;
  std::size_t start = 0;
  for (std::size_t from = 0;;) {
    std::size_t nl = text.find('\n', from);
    if (nl != std::string_view::npos && text.substr(nl + 1, 2) != "  ") {
      from = nl + 1;  // part of this line: escaped by printable() below
      continue;
    }
    out += printable(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) return out;
    out += '\n';
    start = from = nl + 1;
  }
}

}  // namespace envd::util
