#include "plugin/search_path.hpp"

#include <gtest/gtest.h>

#include "plugin/test_support.hpp"

namespace envd::plugin {
namespace {

namespace fs = std::filesystem;
using testing::ScopedEnv;
using testing::TempDir;

TEST(SearchPath, OrderIsEnvThenDataDirThenBesideBinaryThenInstallDir) {
  TempDir tmp;
  fs::path a = tmp.mkdir("a");
  fs::path b = tmp.mkdir("b");
  fs::path data_plugins = tmp.mkdir("data/plugins");
  fs::path prefix_plugins = plugin_dir_under(tmp / "prefix");
  fs::create_directories(prefix_plugins);
  fs::path install = tmp.mkdir("install");
  std::string env = a.string() + ":" + b.string();

  auto dirs = make_search_path({.env_path = env,
                                .data_dir = tmp / "data",
                                .prefix = tmp / "prefix",
                                .install_dir = install});

  EXPECT_EQ(dirs, (std::vector<fs::path>{a, b, data_plugins, prefix_plugins, install}));
}

TEST(SearchPath, DuplicatesAreListedOnceAtTheirFirstPosition) {
  TempDir tmp;
  fs::path a = tmp.mkdir("a");
  fs::path b = tmp.mkdir("b");
  fs::create_directory_symlink(a, tmp / "link-to-a");
  std::string env = b.string() + ":" + (tmp / "link-to-a").string() + ":" + a.string() + ":" +
                    (tmp / "b/../b").string();

  auto dirs = make_search_path({.env_path = env, .install_dir = a});

  EXPECT_EQ(dirs, (std::vector<fs::path>{b, a}));
}

TEST(SearchPath, MissingDirectoriesFilesAndEmptyEntriesAreSkipped) {
  TempDir tmp;
  fs::path a = tmp.mkdir("a");
  testing::write_text(tmp / "file", "x");
  std::string env =
      "::" + (tmp / "missing").string() + "::" + (tmp / "file").string() + ":" + a.string() + ":";

  auto dirs = make_search_path({.env_path = env,
                                .data_dir = tmp / "no-data",
                                .prefix = tmp / "no-prefix",
                                .install_dir = tmp / "no-install"});

  EXPECT_EQ(dirs, (std::vector<fs::path>{a}));
}

TEST(SearchPath, RelativeEntriesAreNeverSearched) {
  TempDir tmp;
  fs::path a = tmp.mkdir("a");
  tmp.mkdir("rel");
  // From inside tmp, "rel" and "./rel" would name a real directory.
  fs::path before = fs::current_path();
  fs::current_path(tmp.path());
  std::string env = "rel:./rel:" + a.string() + ":../" + tmp.path().filename().string() + "/rel";
  auto dirs = make_search_path({.env_path = env, .install_dir = tmp / "no-install"});
  fs::current_path(before);
  EXPECT_EQ(dirs, (std::vector<fs::path>{a}));
  EXPECT_EQ(
      relative_entries(env),
      (std::vector<std::string>{"rel", "./rel", "../" + tmp.path().filename().string() + "/rel"}));
  EXPECT_TRUE(relative_entries("::/abs:").empty());
}

TEST(SearchPath, DefaultReadsEnvironment) {
  TempDir tmp;
  fs::path a = tmp.mkdir("a");
  fs::path b = tmp.mkdir("b");
  fs::path data_plugins = tmp.mkdir("xdg-data/envd/plugins");
  ScopedEnv path_env("ENVD_PLUGIN_PATH", a.string() + ":" + b.string());
  ScopedEnv data_env("XDG_DATA_HOME", (tmp / "xdg-data").string());

  auto dirs = default_search_path();

  ASSERT_GE(dirs.size(), 3u);
  EXPECT_EQ(dirs[0], a);
  EXPECT_EQ(dirs[1], b);
  EXPECT_EQ(dirs[2], data_plugins);
  // Whatever follows is beside the test binary or the install prefix, both real
  // directories of this machine; they come after the user's.
  for (size_t i = 3; i < dirs.size(); ++i) EXPECT_TRUE(fs::is_directory(dirs[i]));
}

TEST(SearchPath, DefaultManifestCacheIsInTheCacheDir) {
  TempDir tmp;
  ScopedEnv cache_env("XDG_CACHE_HOME", tmp.path().string());
  EXPECT_EQ(default_manifest_cache(), tmp / "envd/plugin-manifests.json");
}

}  // namespace
}  // namespace envd::plugin
