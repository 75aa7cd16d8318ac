// A tarball export's file: nothing with a name until the build succeeded,
// an earlier file whole when it did not, and in place where replacing the
// file would change more than its content.
#include "cli/output_file.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "util/test_support.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;

using util::testing::entry_names;
using util::testing::read_text;
using util::testing::write_text;

class OutputFileTest : public ::testing::Test {
 protected:
  std::vector<std::string> names() const { return entry_names(dir_); }

  util::testing::TempDir tmp_;
  const fs::path dir_ = tmp_.path();
};

TEST_F(OutputFileTest, NothingIsNamedUntilTheCommitAndAnEarlierFileStaysUntilThen) {
  const fs::path tar = dir_ / "image.tar";
  write_text(tar, "earlier");
  fs::permissions(tar, fs::perms(0640));
  OutputFile file(tar.string());
  ASSERT_TRUE(file.write("new "));
  ASSERT_TRUE(file.write("content"));
  // Mid-export, as a SIGKILL would find it: the earlier file, nothing else.
  EXPECT_EQ(names(), std::vector<std::string>{"image.tar"});
  EXPECT_EQ(read_text(tar), "earlier");
  ASSERT_TRUE(file.commit());
  EXPECT_EQ(read_text(tar), "new content");
  EXPECT_EQ(fs::status(tar).permissions(), fs::perms(0640));
  EXPECT_EQ(names(), std::vector<std::string>{"image.tar"});
}

TEST_F(OutputFileTest, AnAbandonedExportLeavesTheEarlierFileAndNothingElse) {
  const fs::path tar = dir_ / "image.tar";
  write_text(tar, "earlier");
  {
    OutputFile file(tar.string());
    ASSERT_TRUE(file.write("half of it"));
    file.abandon();
    EXPECT_FALSE(file.write("more"));
  }
  EXPECT_EQ(read_text(tar), "earlier");
  EXPECT_EQ(names(), std::vector<std::string>{"image.tar"});
}

TEST_F(OutputFileTest, AnExportWithoutBytesStillMakesItsFile) {
  OutputFile file((dir_ / "empty.tar").string());
  ASSERT_TRUE(file.commit());
  EXPECT_TRUE(fs::is_regular_file(dir_ / "empty.tar"));
  EXPECT_EQ(fs::file_size(dir_ / "empty.tar"), 0u);
}

// Replacing these would change more than their content: a file with other
// names would lose them, a device would be replaced by a file.
TEST_F(OutputFileTest, HardLinksAndDevicesAreWrittenInPlace) {
  const fs::path tar = dir_ / "image.tar";
  write_text(tar, "earlier");
  fs::create_hard_link(tar, dir_ / "other-name");
  OutputFile file(tar.string());
  ASSERT_TRUE(file.write("new"));
  ASSERT_TRUE(file.commit());
  EXPECT_EQ(read_text(dir_ / "other-name"), "new");

  OutputFile null("/dev/null");
  ASSERT_TRUE(null.write("discarded"));
  ASSERT_TRUE(null.commit());
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

// A name that leaves no room for the temporary's suffix.
TEST_F(OutputFileTest, ALongNameStillWorks) {
  const fs::path tar = dir_ / std::string(250, 'a');
  OutputFile file(tar.string());
  ASSERT_TRUE(file.write("x"));
  ASSERT_TRUE(file.commit());
  EXPECT_EQ(read_text(tar), "x");
  EXPECT_EQ(names().size(), 1u);
}

// A bind-mounted file (docker run -v out.tar:/out.tar) cannot be renamed
// over: its content is copied in. The mount needs root, as the suite does.
TEST_F(OutputFileTest, ABindMountedFileGetsTheContentCopiedIn) {
  const fs::path source = dir_ / "host.tar";
  const fs::path target = dir_ / "mounted.tar";
  write_text(source, "earlier");
  write_text(target, "");
  ASSERT_EQ(::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr), 0)
      << std::strerror(errno);
  {
    OutputFile file(target.string());
    EXPECT_TRUE(file.write("new content"));
    auto committed = file.commit();
    EXPECT_TRUE(committed) << committed.error().message();
  }
  EXPECT_EQ(read_text(source), "new content");
  ::umount(target.c_str());
}

}  // namespace
}  // namespace envd::cli
