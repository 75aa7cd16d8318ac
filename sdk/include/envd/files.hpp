// Reading a small file a driver keeps or the user names (a stored login, a
// config file, a known_hosts file) without being held by what is not a file:
// a FIFO in its place would block an open or a read for good.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <string>

#include "envd/result.hpp"

namespace envd::sdk {

// What a file that is not a regular one is, for a message: "a directory",
// "a FIFO", "a socket", "a device", else "not a regular file".
inline const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

// The whole of the regular file at `path`, at most `limit` bytes. A missing
// file is Errc::not_found; a directory, FIFO, socket or device is
// Errc::unsupported ("'<path>' is a FIFO, not a regular file"), found
// without blocking; a larger file is Errc::invalid_argument, refused before
// it is read. Other failures are Errc::permission or Errc::internal, with
// strerror's words.
Result<std::string> read_regular_file(const std::string& path,
                                      std::size_t limit = std::size_t{16} << 20);

}  // namespace envd::sdk
