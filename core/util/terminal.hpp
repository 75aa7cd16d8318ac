// Terminal detection, so data is never written to a console by accident and
// progress can choose between a live view and plain lines.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

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

// Started with stdin, stdout or stderr closed (2>&-), the next file the
// process opens (the store's lock, a socket) would take that number, and
// messages would be written into it: each closed one gets a stand-in, noted.
// stdout's is /dev/full, so that data written there fails (and is reported)
// rather than vanishing; the others' is /dev/null.
inline void stand_in_for_closed_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    // open() takes the lowest free number: this one, the lower ones being
    // open by now. Should it fail, there is nothing better to do.
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      if (fd != 1 || ::open("/dev/full", O_WRONLY) != 1) {
        (void)::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      }
      note_closed_at_start(fd);
    }
  }
}

}  // namespace envd::util
