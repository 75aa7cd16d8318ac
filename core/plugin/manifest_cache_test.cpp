#include "plugin/manifest_cache.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <chrono>
#include <thread>

#include "plugin/test_support.hpp"
#include "util/atomic_file.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::TempDir;

ModuleInfo builder_facts(const std::string& type) {
  return testing::usable_facts(Kind::builder, type);
}

ModuleStamp file_stamp(const fs::path& path) {
  auto stamp = stamp_of(fs::canonical(path));
  EXPECT_TRUE(stamp);
  return stamp.value_or(ModuleStamp{});
}

std::string read(const fs::path& path) {
  auto text = util::read_file(path);
  EXPECT_TRUE(text);
  return text ? *text : std::string();
}

class ManifestCacheTest : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path cache_file = tmp / "cache/plugin-manifests.json";
  fs::path module = tmp / "mod.so";
  void SetUp() override { testing::write_text(module, "module bytes"); }
};

TEST_F(ManifestCacheTest, StampIsCanonicalPathSizeAndMtime) {
  testing::set_mtime(module, 1700000000, 123456789);
  ModuleStamp stamp = file_stamp(module);
  EXPECT_EQ(stamp.path, fs::canonical(module).native());
  EXPECT_EQ(stamp.size, 12);
  EXPECT_EQ(stamp.mtime_ns, 1700000000LL * 1000000000 + 123456789);
  EXPECT_FALSE(stamp_of(tmp / "missing.so"));
}

TEST_F(ManifestCacheTest, SavedEntriesAreFoundAgain) {
  ManifestCache cache;
  cache.store(file_stamp(module), builder_facts("tcp"));
  ModuleInfo refused;
  refused.reason = "crashed while loading (signal 11)";
  testing::write_text(tmp / "bad.so", "bad");
  cache.store(file_stamp(tmp / "bad.so"), refused);
  ASSERT_TRUE(cache.save(cache_file));

  ManifestCache loaded = ManifestCache::load(cache_file);
  EXPECT_EQ(loaded.size(), 2u);
  auto hit = loaded.find(file_stamp(module));
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->ok);
  EXPECT_EQ(hit->type, "tcp");
  EXPECT_EQ(hit->version, "0.1.0");
  EXPECT_EQ(hit->description, "facts for tests");
  auto bad = loaded.find(file_stamp(tmp / "bad.so"));
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->ok);
  EXPECT_EQ(bad->reason, "crashed while loading (signal 11)");
}

TEST_F(ManifestCacheTest, SaveCreatesAPrivateDirectoryAndFile) {
  ManifestCache cache;
  cache.store(file_stamp(module), builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  struct stat st {};
  ASSERT_EQ(::stat(cache_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(cache_file.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto root = json::parse(read(cache_file)).as_object();
  EXPECT_EQ(root.at("format"), 1);
  EXPECT_EQ(root.at("abi_major"), ENVD_ABI_MAJOR);
  EXPECT_EQ(root.at("abi_minor"), ENVD_ABI_MINOR);
  EXPECT_TRUE(root.at("modules").as_object().contains(fs::canonical(module).native()));
}

TEST_F(ManifestCacheTest, AnotherSizeMtimeOrPathIsAMiss) {
  ManifestCache cache;
  ModuleStamp stamp = file_stamp(module);
  cache.store(stamp, builder_facts("tcp"));
  EXPECT_TRUE(cache.find(stamp));
  ModuleStamp other = stamp;
  other.size += 1;
  EXPECT_FALSE(cache.find(other));
  other = stamp;
  other.mtime_ns += 1;
  EXPECT_FALSE(cache.find(other));
  other = stamp;
  other.path += "x";
  EXPECT_FALSE(cache.find(other));
}

// cp -p, rsync -a, tar and dpkg keep a file's mtime, and modules of one
// build are often of one size: a module replaced so was taken for the one
// cached (a crashing one then ran inside envd). Its inode or ctime differs.
TEST_F(ManifestCacheTest, AModuleReplacedWithTheSameSizeAndMtimeIsAMiss) {
  testing::set_mtime(module, 1700000000, 0);
  ModuleStamp before = file_stamp(module);
  ManifestCache cache;
  cache.store(before, builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  // Replaced by a rename, as an installer does: a new inode.
  testing::write_text(tmp / "new.so", "MODULE BYTES");
  testing::set_mtime(tmp / "new.so", 1700000000, 0);
  fs::rename(tmp / "new.so", module);
  ModuleStamp after = file_stamp(module);
  ASSERT_EQ(after.size, before.size);
  ASSERT_EQ(after.mtime_ns, before.mtime_ns);
  EXPECT_FALSE(ManifestCache::load(cache_file).find(after));
  // Rewritten in place, as cp -p does: the same inode, a new ctime.
  cache.store(after, builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  testing::write_text(module, "module bytez");
  testing::set_mtime(module, 1700000000, 0);
  ModuleStamp rewritten = file_stamp(module);
  ASSERT_EQ(rewritten.inode, after.inode);
  EXPECT_FALSE(ManifestCache::load(cache_file).find(rewritten));
}

// A FIFO at the cache's path blocked every command that loads drivers.
TEST_F(ManifestCacheTest, AFifoAtTheCachePathIsLeftAloneAndDoesNotBlock) {
  fs::create_directories(cache_file.parent_path());
  ASSERT_EQ(::mkfifo(cache_file.c_str(), 0600), 0);
  ManifestCache cache = ManifestCache::load(cache_file);
  cache.store(file_stamp(module), builder_facts("tcp"));
  auto saved = cache.save(cache_file);
  EXPECT_FALSE(saved);
  EXPECT_TRUE(fs::is_fifo(cache_file));
}

TEST_F(ManifestCacheTest, ACacheOfAnotherAbiOrFormatIsIgnoredWhole) {
  ManifestCache cache;
  cache.store(file_stamp(module), builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  const std::string good = read(cache_file);

  for (const char* key : {"abi_major", "abi_minor", "format"}) {
    auto root = json::parse(good).as_object();
    root[key] = root.at(key).as_int64() + 1;
    testing::write_text(cache_file, json::serialize(root));
    ManifestCache loaded = ManifestCache::load(cache_file);
    EXPECT_EQ(loaded.size(), 0u) << key;
    EXPECT_FALSE(loaded.find(file_stamp(module))) << key;
  }
}

// Verdicts of another scanner (an older envd, which may have refused what
// this one would take, or said less of why) are not reused.
TEST_F(ManifestCacheTest, ACacheOfAnotherScannerIsIgnoredWhole) {
  ManifestCache cache = ManifestCache::load(cache_file, "envd 0.1.0, helper A");
  cache.store(file_stamp(module), builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  EXPECT_EQ(json::parse(read(cache_file)).at("scanner"), "envd 0.1.0, helper A");
  EXPECT_TRUE(ManifestCache::load(cache_file, "envd 0.1.0, helper A").find(file_stamp(module)));
  ManifestCache other = ManifestCache::load(cache_file, "envd 0.2.0, helper B");
  EXPECT_EQ(other.size(), 0u);
  EXPECT_FALSE(other.find(file_stamp(module)));
}

TEST_F(ManifestCacheTest, ACorruptCacheIsIgnoredAndRewritten) {
  fs::create_directories(cache_file.parent_path());
  testing::write_text(cache_file, "{\"format\": 1, \"modu");
  ManifestCache cache = ManifestCache::load(cache_file);
  EXPECT_EQ(cache.size(), 0u);
  cache.store(file_stamp(module), builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  EXPECT_TRUE(ManifestCache::load(cache_file).find(file_stamp(module)));
}

// A cache repairs itself even when a run as another user (sudo) or a chmod
// left it unwritable: it is derived, unlike the store (util::ReadOnlyFile).
TEST_F(ManifestCacheTest, AReadOnlyCacheIsStillRewritten) {
  fs::create_directories(cache_file.parent_path());
  testing::write_text(cache_file, "{\"format\": 1, \"modu");
  ASSERT_EQ(::chmod(cache_file.c_str(), 0444), 0);
  ManifestCache cache = ManifestCache::load(cache_file);
  cache.store(file_stamp(module), builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  EXPECT_TRUE(ManifestCache::load(cache_file).find(file_stamp(module)));
}

TEST_F(ManifestCacheTest, MalformedEntriesAreSkippedOthersKept) {
  ManifestCache cache;
  cache.store(file_stamp(module), builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  auto root = json::parse(read(cache_file)).as_object();
  auto& modules = root["modules"].as_object();
  modules["/other.so"] = json::object{{"size", "big"}};
  modules["relative.so"] = modules.at(fs::canonical(module).native());
  modules["/third.so"] = 7;
  testing::write_text(cache_file, json::serialize(root));

  ManifestCache loaded = ManifestCache::load(cache_file);
  EXPECT_EQ(loaded.size(), 1u);
  EXPECT_TRUE(loaded.find(file_stamp(module)));
}

TEST_F(ManifestCacheTest, AnUnchangedCacheIsNotRewritten) {
  ManifestCache cache;
  cache.store(file_stamp(module), builder_facts("tcp"));
  ASSERT_TRUE(cache.save(cache_file));
  testing::set_mtime(cache_file, 1000);

  ManifestCache loaded = ManifestCache::load(cache_file);
  ASSERT_TRUE(loaded.find(file_stamp(module)));
  ASSERT_TRUE(loaded.save(cache_file));
  struct stat st {};
  ASSERT_EQ(::stat(cache_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000);
}

TEST_F(ManifestCacheTest, UnusedEntriesStayOnlyWhileTheirFileMatches) {
  testing::write_text(tmp / "gone.so", "g");
  testing::write_text(tmp / "changed.so", "c");
  ManifestCache cache;
  cache.store(file_stamp(module), builder_facts("kept"));
  cache.store(file_stamp(tmp / "gone.so"), builder_facts("gone"));
  cache.store(file_stamp(tmp / "changed.so"), builder_facts("changed"));
  ASSERT_TRUE(cache.save(cache_file));
  fs::remove(tmp / "gone.so");
  testing::write_text(tmp / "changed.so", "changed!");

  ManifestCache loaded = ManifestCache::load(cache_file);
  EXPECT_EQ(loaded.size(), 3u);
  ASSERT_TRUE(loaded.save(cache_file));  // nothing used: prunes only
  auto modules = json::parse(read(cache_file)).at("modules").as_object();
  EXPECT_EQ(modules.size(), 1u);
  EXPECT_TRUE(modules.contains(fs::canonical(module).native()));
}

TEST_F(ManifestCacheTest, AnEmptyPathDisablesTheCache) {
  ManifestCache cache = ManifestCache::load({});
  cache.store(file_stamp(module), builder_facts("tcp"));
  EXPECT_TRUE(cache.save({}));
  EXPECT_FALSE(fs::exists(cache_file));
}

TEST_F(ManifestCacheTest, NothingIsWrittenWhenThereIsNothingToRemember) {
  ASSERT_TRUE(ManifestCache::load(cache_file).save(cache_file));
  EXPECT_FALSE(fs::exists(cache_file));
}

}  // namespace
}  // namespace envd::plugin
