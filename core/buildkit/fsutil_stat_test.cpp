#include "buildkit/fsutil_stat.hpp"

#include <gtest/gtest.h>

#include "buildkit/request_metadata.hpp"

namespace envd::buildkit {
namespace {

namespace m = fsutil_mode;

TEST(FsutilMode, FromPosix) {
  EXPECT_EQ(m::from_posix(S_IFREG | 0644), 0644u);
  EXPECT_EQ(m::from_posix(S_IFDIR | 0755), m::dir | 0755u);
  EXPECT_EQ(m::from_posix(S_IFLNK | 0777), m::symlink | 0777u);
  EXPECT_EQ(m::from_posix(S_IFBLK | 0660), m::device | 0660u);
  EXPECT_EQ(m::from_posix(S_IFCHR | 0666), m::device | m::char_device | 0666u);
  EXPECT_EQ(m::from_posix(S_IFIFO | 0600), m::named_pipe | 0600u);
  EXPECT_EQ(m::from_posix(S_IFSOCK | 0755), m::socket | 0755u);
  EXPECT_EQ(m::from_posix(S_IFREG | S_ISUID | 0755), m::setuid | 0755u);
  EXPECT_EQ(m::from_posix(S_IFREG | S_ISGID | 0755), m::setgid | 0755u);
  EXPECT_EQ(m::from_posix(S_IFDIR | S_ISVTX | 0777), m::dir | m::sticky | 0777u);
  EXPECT_EQ(m::from_posix(S_IFDIR | 0755), 0x800001edu);
}

TEST(FsutilMode, RoundTrips) {
  for (mode_t type : {S_IFREG, S_IFDIR, S_IFLNK, S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK}) {
    for (mode_t bits : {0000, 0644, 0755, 07777, 04711, 02750, 01777}) {
      mode_t mode = type | bits;
      EXPECT_EQ(m::to_posix(m::from_posix(mode)), mode) << std::oct << mode;
    }
  }
}

TEST(FsutilMode, Predicates) {
  EXPECT_TRUE(m::is_regular(0644));
  EXPECT_TRUE(m::is_regular(m::setuid | 0755));
  EXPECT_FALSE(m::is_regular(m::dir | 0755));
  EXPECT_FALSE(m::is_regular(m::named_pipe));
  EXPECT_TRUE(m::is_dir(m::dir));
  EXPECT_TRUE(m::is_symlink(m::symlink | 0777));
}

TEST(QueryUnescape, DecodesGoQueryEscaping) {
  EXPECT_EQ(query_unescape("a+b"), "a b");
  EXPECT_EQ(query_unescape("%C3%A9t%C3%A9"), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(query_unescape("%2a.md"), "*.md");
  EXPECT_EQ(query_unescape("plain/path"), "plain/path");
  EXPECT_EQ(query_unescape("bad%zz"), "bad%zz");
  EXPECT_EQ(query_unescape("trail%4"), "trail%4");
}

}  // namespace
}  // namespace envd::buildkit
