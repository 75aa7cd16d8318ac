#include "context/file_staging.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "context/stored_files.hpp"
#include "context/test_support.hpp"
#include "util/atomic_file.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

class FileStaging : public ::testing::Test {
 protected:
  fs::path file(const std::string& name) const { return store_.data_dir(ctx_) / "files" / name; }
  std::string content(const std::string& name) const {
    auto read = util::read_file(file(name));
    return read ? *read : "<missing>";
  }

  TempDir tmp_;
  ContextStore store_{tmp_.path() / "config"};
  Context ctx_ = context_with_id();
};

TEST_F(FileStaging, StagedFilesReplaceTheStoredOnesOnlyOnCommit) {
  ASSERT_TRUE(store_option_file(store_, ctx_, "tls-ca", "old ca"));
  ASSERT_TRUE(store_option_file(store_, ctx_, "config", "old config"));
  StagedFiles files(store_, ctx_);
  ASSERT_TRUE(files.stage({{"tls-ca", "new ca"}}));
  // Until the store holds the new record, commands still see the old file.
  EXPECT_EQ(content("tls-ca"), "old ca");
  EXPECT_EQ(content(".tls-ca.new"), "new ca");
  EXPECT_EQ(fs::status(file(".tls-ca.new")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  ASSERT_TRUE(files.commit({"config"}));
  EXPECT_EQ(content("tls-ca"), "new ca");
  EXPECT_FALSE(fs::exists(file(".tls-ca.new")));
  EXPECT_FALSE(fs::exists(file("config")));
}

TEST_F(FileStaging, AnUncommittedStagingLeavesTheStoredFilesAsTheyWere) {
  ASSERT_TRUE(store_option_file(store_, ctx_, "tls-ca", "old ca"));
  {
    StagedFiles files(store_, ctx_);
    ASSERT_TRUE(files.stage({{"tls-ca", "new ca"}, {"tls-key", "new key"}}));
  }  // the store update failed: no commit
  EXPECT_EQ(content("tls-ca"), "old ca");
  EXPECT_FALSE(fs::exists(file(".tls-ca.new")));
  EXPECT_FALSE(fs::exists(file(".tls-key.new")));
  EXPECT_FALSE(fs::exists(file("tls-key")));
}

TEST_F(FileStaging, AFailedStageRemovesWhatItWrote) {
  // A directory where the second file is staged makes its write fail.
  ASSERT_TRUE(store_option_file(store_, ctx_, "b", "old b"));
  fs::create_directories(file(".b.new") / "occupied");
  {
    StagedFiles files(store_, ctx_);
    EXPECT_FALSE(files.stage({{"a", "new a"}, {"b", "new b"}}));
    EXPECT_TRUE(fs::exists(file(".a.new")));
  }
  EXPECT_FALSE(fs::exists(file(".a.new")));
  EXPECT_FALSE(fs::exists(file("a")));
  EXPECT_EQ(content("b"), "old b");
  // Not staged by this object, so not removed by it.
  EXPECT_TRUE(fs::exists(file(".b.new") / "occupied"));
}

TEST_F(FileStaging, AFailedRenameNamesTheOption) {
  fs::create_directories(file("tls-ca") / "occupied");
  StagedFiles files(store_, ctx_);
  ASSERT_TRUE(files.stage({{"tls-ca", "new ca"}}));
  auto committed = files.commit({});
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code(), Errc::internal);
  std::string dir = store_.data_dir(ctx_).string();
  EXPECT_EQ(committed.error().message().rfind(
                "cannot store the file of option 'tls-ca' in '" + dir + "': ", 0),
            0u)
      << committed.error().message();
}

TEST_F(FileStaging, AContextWithoutAnIdStagesNothing) {
  StagedFiles files(store_, default_context());  // never stored: no id, no directory
  EXPECT_FALSE(files.stage({{"tls-ca", "pem"}}));
  EXPECT_FALSE(fs::exists(store_.data_root()));
}

}  // namespace
}  // namespace envd::context
