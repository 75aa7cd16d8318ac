// Writing messages to a stream that may be closed or full.
#pragma once

#include <cstdio>
#include <string_view>

namespace envd::util {

// Writes `text` to `stream` (stderr, as a rule) and ignores a failed write. A
// message has nowhere else to go: a closed or full stderr must not turn a
// warning, or the error a command ends with, into an abort, as fmt::print's
// exception would (thrown from a module's callback or a progress thread, it
// reaches std::terminate). What the command did, and its exit status, stand.
inline void write_message(std::FILE* stream, std::string_view text) noexcept {
  if (!text.empty()) (void)std::fwrite(text.data(), 1, text.size(), stream);
}

}  // namespace envd::util
