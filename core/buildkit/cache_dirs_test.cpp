#include "buildkit/cache_dirs.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "buildkit/content_store.hpp"
#include "util/test_support.hpp"

namespace envd::buildkit {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using util::testing::read_text;
using util::testing::TempDir;
using util::testing::write_text;

std::string descriptor_json(const std::string& content) {
  json::object d{{"mediaType", "application/vnd.oci.image.index.v1+json"},
                 {"digest", sha256_digest(content)},
                 {"size", static_cast<int64_t>(content.size())}};
  return json::serialize(d);
}

std::string str(const json::value& v) { return std::string(v.as_string()); }

json::array manifests_of(const fs::path& dir) {
  return json::parse(read_text(dir / "index.json")).as_object().at("manifests").as_array();
}

TEST(CacheDirsTest, ExportCreatesTheDirAndRecordsTheIndex) {
  TempDir tmp;
  fs::path dir = tmp.path() / "new" / "cache";
  std::vector<CacheEntry> exports{{"local", {{"dest", dir.string()}, {"mode", "max"}}},
                                  {"registry", {{"ref", "r/x"}}}};
  std::vector<CacheEntry> imports;
  auto caches = prepare_local_caches(exports, imports);
  ASSERT_TRUE(caches) << caches.error().message();
  EXPECT_TRUE(fs::is_directory(dir));
  ASSERT_EQ(caches->dirs, std::vector<fs::path>{dir});
  ASSERT_EQ(caches->exports.size(), 1U);
  EXPECT_EQ(caches->exports[0].second, "latest");

  // No cache.manifest: nothing to record.
  ASSERT_TRUE(record_local_cache_exports(*caches, {{"containerimage.digest", "sha256:x"}}));
  EXPECT_FALSE(fs::exists(dir / "index.json"));

  ASSERT_TRUE(record_local_cache_exports(*caches, {{"cache.manifest", descriptor_json("one")}}));
  EXPECT_EQ(str(json::parse(read_text(dir / "oci-layout")).as_object().at("imageLayoutVersion")),
            "1.0.0");
  auto index = json::parse(read_text(dir / "index.json")).as_object();
  EXPECT_EQ(index.at("schemaVersion").as_int64(), 2);
  auto manifests = manifests_of(dir);
  ASSERT_EQ(manifests.size(), 1U);
  EXPECT_EQ(str(manifests[0].at("digest")), sha256_digest("one"));
  EXPECT_EQ(manifests[0].at("size").as_int64(), 3);
  EXPECT_EQ(str(manifests[0].at("annotations").at(kRefNameAnnotation)), "latest");
}

// The layout file never changes, so it is not rewritten: a read-only one
// (a cache directory kept read-only but its index) does not fail a build.
TEST(CacheDirsTest, AnUnchangedLayoutFileIsNotRewritten) {
  TempDir tmp;
  fs::path dir = tmp.path() / "cache";
  std::vector<CacheEntry> exports{{"local", {{"dest", dir.string()}}}};
  std::vector<CacheEntry> imports;
  auto caches = prepare_local_caches(exports, imports);
  ASSERT_TRUE(caches) << caches.error().message();
  ASSERT_TRUE(record_local_cache_exports(*caches, {{"cache.manifest", descriptor_json("one")}}));
  ASSERT_EQ(::chmod((dir / "oci-layout").c_str(), 0444), 0);
  auto again = record_local_cache_exports(*caches, {{"cache.manifest", descriptor_json("two")}});
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(str(manifests_of(dir).at(0).at("digest")), sha256_digest("two"));
}

TEST(CacheDirsTest, PutReplacesOnlyTheSameTag) {
  TempDir tmp;
  const fs::path& dir = tmp.path();
  auto desc = [](const std::string& content) {
    return json::parse(descriptor_json(content)).as_object();
  };
  ASSERT_TRUE(put_index_entry(dir, "latest", desc("a")));
  ASSERT_TRUE(put_index_entry(dir, "v1", desc("b")));
  ASSERT_TRUE(put_index_entry(dir, "latest", desc("c")));
  auto manifests = manifests_of(dir);
  ASSERT_EQ(manifests.size(), 2U);
  EXPECT_EQ(str(manifests[0].at("digest")), sha256_digest("b"));
  EXPECT_EQ(str(manifests[1].at("digest")), sha256_digest("c"));

  auto latest = index_digest(dir, "latest");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->value_or(""), sha256_digest("c"));
  auto v1 = index_digest(dir, "v1");
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->value_or(""), sha256_digest("b"));
  auto none = index_digest(dir, "v2");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST(CacheDirsTest, ImportResolvesTheTagToADigest) {
  TempDir tmp;
  fs::path dir = tmp.mkdir("cache");
  fs::create_directories(dir / "blobs" / "sha256");
  const std::string manifest = "{\"manifests\":[]}";
  write_text(dir / "blobs" / "sha256" / sha256_digest(manifest).substr(7), manifest);
  ASSERT_TRUE(put_index_entry(dir, "ci", json::parse(descriptor_json(manifest)).as_object()));

  std::vector<CacheEntry> exports;
  std::vector<CacheEntry> imports{{"local", {{"src", dir.string()}, {"tag", "ci"}}},
                                  {"registry", {{"ref", "r/x"}}}};
  auto caches = prepare_local_caches(exports, imports);
  ASSERT_TRUE(caches) << caches.error().message();
  EXPECT_TRUE(caches->warnings.empty());
  ASSERT_EQ(imports.size(), 2U);
  EXPECT_EQ(imports[0].attrs.at("digest"), sha256_digest(manifest));
  EXPECT_EQ(caches->dirs, std::vector<fs::path>{dir});
  EXPECT_TRUE(caches->exports.empty());
}

TEST(CacheDirsTest, ImportsWithoutIndexTagOrBlobAreSkippedWithAWarning) {
  TempDir tmp;
  fs::path empty = tmp.mkdir("empty");
  fs::path tagged = tmp.mkdir("tagged");
  ASSERT_TRUE(put_index_entry(tagged, "latest", json::parse(descriptor_json("gone")).as_object()));
  fs::path broken = tmp.mkdir("broken");
  write_text(broken / "index.json", "{not json");
  // A CI job's first run: the directory its --cache-to will make.
  fs::path missing = tmp.path() / "not-yet";

  std::vector<CacheEntry> exports;
  std::vector<CacheEntry> imports{{"local", {{"src", empty.string()}}},
                                  {"local", {{"src", tagged.string()}, {"tag", "other"}}},
                                  {"local", {{"src", tagged.string()}}},
                                  {"local", {{"src", broken.string()}}},
                                  {"local", {{"src", missing.string()}}}};
  auto caches = prepare_local_caches(exports, imports);
  ASSERT_TRUE(caches) << caches.error().message();
  EXPECT_TRUE(imports.empty());
  EXPECT_TRUE(caches->dirs.empty());
  ASSERT_EQ(caches->warnings.size(), 5U);
  EXPECT_NE(caches->warnings[0].find(empty.string()), std::string::npos);
  EXPECT_NE(caches->warnings[1].find("no digest found for tag 'other'"), std::string::npos);
  EXPECT_NE(caches->warnings[2].find("unavailable"), std::string::npos);
  EXPECT_NE(caches->warnings[3].find("invalid JSON"), std::string::npos) << caches->warnings[3];
  EXPECT_EQ(caches->warnings[4], "local cache import at " + missing.string() +
                                     " skipped: cannot read '" + (missing / "index.json").string() +
                                     "': No such file or directory")
      << caches->warnings[4];
  EXPECT_FALSE(fs::exists(missing));
}

// A --cache-to directory that is a file is refused before the build, as a
// read-only one is; it once passed, and the build failed at its very end.
TEST(CacheDirsTest, AnExportDirectoryThatIsAFileIsRefused) {
  TempDir tmp;
  write_text(tmp.path() / "file", "x");
  std::vector<CacheEntry> exports{{"local", {{"dest", (tmp.path() / "file").string()}}}};
  std::vector<CacheEntry> imports;
  auto caches = prepare_local_caches(exports, imports);
  ASSERT_FALSE(caches);
  EXPECT_EQ(caches.error().message(),
            "cannot create the cache directory: cannot create directory '" +
                (tmp.path() / "file").string() + "': Not a directory");
}

TEST(CacheDirsTest, AMalformedDescriptorIsAnError) {
  TempDir tmp;
  LocalCaches caches;
  caches.dirs.push_back(tmp.path());
  caches.exports.emplace_back(tmp.path(), "latest");
  EXPECT_FALSE(record_local_cache_exports(caches, {{"cache.manifest", "[]"}}));
  EXPECT_FALSE(record_local_cache_exports(
      caches, {{"cache.manifest", "{\"digest\":\"sha256:../x\",\"size\":1}"}}));
  EXPECT_FALSE(fs::exists(tmp.path() / "index.json"));
}

}  // namespace
}  // namespace envd::buildkit
