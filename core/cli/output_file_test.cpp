// A tarball export's file: nothing with a name until the build succeeded,
// an earlier file whole when it did not, and in place where replacing the
// file would change more than its content.
#include "cli/output_file.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace envd::cli {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void put(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("envd-output-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      out.push_back(entry.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

TEST_F(OutputFileTest, NothingIsNamedUntilTheCommitAndAnEarlierFileStaysUntilThen) {
  const fs::path tar = dir_ / "image.tar";
  put(tar, "earlier");
  fs::permissions(tar, fs::perms(0640));
  OutputFile file(tar.string());
  ASSERT_TRUE(file.write("new "));
  ASSERT_TRUE(file.write("content"));
  // Mid-export, as a SIGKILL would find it: the earlier file, nothing else.
  EXPECT_EQ(names(), std::vector<std::string>{"image.tar"});
  EXPECT_EQ(slurp(tar), "earlier");
  ASSERT_TRUE(file.commit());
  EXPECT_EQ(slurp(tar), "new content");
  EXPECT_EQ(fs::status(tar).permissions(), fs::perms(0640));
  EXPECT_EQ(names(), std::vector<std::string>{"image.tar"});
}

TEST_F(OutputFileTest, AnAbandonedExportLeavesTheEarlierFileAndNothingElse) {
  const fs::path tar = dir_ / "image.tar";
  put(tar, "earlier");
  {
    OutputFile file(tar.string());
    ASSERT_TRUE(file.write("half of it"));
    file.abandon();
    EXPECT_FALSE(file.write("more"));
  }
  EXPECT_EQ(slurp(tar), "earlier");
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
  put(tar, "earlier");
  fs::create_hard_link(tar, dir_ / "other-name");
  OutputFile file(tar.string());
  ASSERT_TRUE(file.write("new"));
  ASSERT_TRUE(file.commit());
  EXPECT_EQ(slurp(dir_ / "other-name"), "new");

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
  EXPECT_EQ(slurp(tar), "x");
  EXPECT_EQ(names().size(), 1u);
}

// A bind-mounted file (docker run -v out.tar:/out.tar) cannot be renamed
// over: its content is copied in. The mount needs root, as the suite does.
TEST_F(OutputFileTest, ABindMountedFileGetsTheContentCopiedIn) {
  const fs::path source = dir_ / "host.tar";
  const fs::path target = dir_ / "mounted.tar";
  put(source, "earlier");
  put(target, "");
  ASSERT_EQ(::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr), 0)
      << std::strerror(errno);
  {
    OutputFile file(target.string());
    EXPECT_TRUE(file.write("new content"));
    auto committed = file.commit();
    EXPECT_TRUE(committed) << committed.error().message();
  }
  EXPECT_EQ(slurp(source), "new content");
  ::umount(target.c_str());
}

}  // namespace
}  // namespace envd::cli
