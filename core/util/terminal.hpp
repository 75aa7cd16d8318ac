// Terminal detection, so data is never written to a console by accident and
// progress can choose between a live view and plain lines.
#pragma once

#include <unistd.h>

namespace envd::util {

inline bool is_terminal(int fd) { return ::isatty(fd) == 1; }

}  // namespace envd::util
