// read_regular_file: a file whole, and what is not a file refused without
// blocking (a FIFO with no writer would hold open() or read() for good).
#include "envd/files.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace envd::sdk {
namespace {

namespace fs = std::filesystem;

class ReadRegularFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/envd-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const char* name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(ReadRegularFile, ReadsAWholeFileAndSaysWhatIsMissing) {
  std::ofstream(path("a")) << "one\ntwo";
  auto text = read_regular_file(path("a"));
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(*text, "one\ntwo");
  auto missing = read_regular_file(path("nope"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found);
}

TEST_F(ReadRegularFile, WhatIsNotAFileIsRefusedAtOnce) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  fs::create_directory(path("dir"));
  fs::create_symlink("/dev/zero", path("zero"));
  for (const auto& [name, kind] : {std::pair<const char*, const char*>{"fifo", "a FIFO"},
                                   {"dir", "a directory"},
                                   {"zero", "a device"}}) {
    auto r = read_regular_file(path(name));
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code(), Errc::unsupported);
    EXPECT_EQ(r.error().message(), "'" + path(name) + "' is " + kind + ", not a regular file");
  }
}

TEST_F(ReadRegularFile, ALargerFileIsRefusedUnread) {
  std::ofstream(path("big")) << std::string(100, 'x');
  auto r = read_regular_file(path("big"), 99);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
  EXPECT_TRUE(read_regular_file(path("big"), 100));
}

}  // namespace
}  // namespace envd::sdk
