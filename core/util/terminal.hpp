// Terminal detection, so data is never written to a console by accident and
// progress can choose between a live view and plain lines.
#pragma once

#include <unistd.h>

namespace envd::util {

inline bool is_terminal(int fd) { return ::isatty(fd) == 1; }

namespace terminal_detail {
inline bool closed_at_start[3] = {false, false, false};
}  // namespace terminal_detail

// main() puts /dev/null on each of fds 0 to 2 the process started without
// (so that no file it opens takes the number), and notes it here: data meant
// for a closed standard output is refused, not thrown away into /dev/null.
inline void note_closed_at_start(int fd) {
  if (fd >= 0 && fd <= 2) terminal_detail::closed_at_start[fd] = true;
}
inline bool was_closed_at_start(int fd) {
  return fd >= 0 && fd <= 2 && terminal_detail::closed_at_start[fd];
}

}  // namespace envd::util
