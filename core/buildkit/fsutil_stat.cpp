#include "buildkit/fsutil_stat.hpp"

namespace envd::buildkit::fsutil_mode {

std::uint32_t from_posix(mode_t mode) {
  std::uint32_t out = mode & perm;
  switch (mode & S_IFMT) {
    case S_IFDIR:
      out |= dir;
      break;
    case S_IFLNK:
      out |= symlink;
      break;
    case S_IFBLK:
      out |= device;
      break;
    case S_IFCHR:
      out |= device | char_device;
      break;
    case S_IFIFO:
      out |= named_pipe;
      break;
    case S_IFSOCK:
      out |= socket;
      break;
    default:
      break;
  }
  if ((mode & S_ISUID) != 0) out |= setuid;
  if ((mode & S_ISGID) != 0) out |= setgid;
  if ((mode & S_ISVTX) != 0) out |= sticky;
  return out;
}

mode_t to_posix(std::uint32_t go_mode) {
  mode_t out = go_mode & perm;
  if ((go_mode & dir) != 0) {
    out |= S_IFDIR;
  } else if ((go_mode & symlink) != 0) {
    out |= S_IFLNK;
  } else if ((go_mode & device) != 0) {
    out |= (go_mode & char_device) != 0 ? S_IFCHR : S_IFBLK;
  } else if ((go_mode & named_pipe) != 0) {
    out |= S_IFIFO;
  } else if ((go_mode & socket) != 0) {
    out |= S_IFSOCK;
  } else {
    out |= S_IFREG;
  }
  if ((go_mode & setuid) != 0) out |= S_ISUID;
  if ((go_mode & setgid) != 0) out |= S_ISGID;
  if ((go_mode & sticky) != 0) out |= S_ISVTX;
  return out;
}

}  // namespace envd::buildkit::fsutil_mode
