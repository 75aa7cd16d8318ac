// fsutil's file metadata on the wire: Go os.FileMode bits in Stat.mode (not
// POSIX st_mode), and the helpers FileSync and FileSend share to read and
// write them.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>

namespace envd::buildkit::fsutil_mode {

inline constexpr std::uint32_t dir = 1u << 31;
inline constexpr std::uint32_t append = 1u << 30;
inline constexpr std::uint32_t exclusive = 1u << 29;
inline constexpr std::uint32_t temporary = 1u << 28;
inline constexpr std::uint32_t symlink = 1u << 27;
inline constexpr std::uint32_t device = 1u << 26;
inline constexpr std::uint32_t named_pipe = 1u << 25;
inline constexpr std::uint32_t socket = 1u << 24;
inline constexpr std::uint32_t setuid = 1u << 23;
inline constexpr std::uint32_t setgid = 1u << 22;
inline constexpr std::uint32_t char_device = 1u << 21;
inline constexpr std::uint32_t sticky = 1u << 20;
inline constexpr std::uint32_t irregular = 1u << 19;
inline constexpr std::uint32_t perm = 0777;
// Bits that make an entry something other than a regular file.
inline constexpr std::uint32_t type_mask =
    dir | symlink | named_pipe | socket | device | char_device | irregular;

// POSIX st_mode to Go FileMode bits. Sockets map to the socket bit, which
// fsutil never sends: callers skip such entries.
std::uint32_t from_posix(mode_t mode);

// Go FileMode bits to POSIX st_mode (file type and permission bits, including
// setuid, setgid and sticky).
mode_t to_posix(std::uint32_t go_mode);

inline bool is_regular(std::uint32_t go_mode) { return (go_mode & type_mask) == 0; }
inline bool is_dir(std::uint32_t go_mode) { return (go_mode & dir) != 0; }
inline bool is_symlink(std::uint32_t go_mode) { return (go_mode & symlink) != 0; }

}  // namespace envd::buildkit::fsutil_mode
