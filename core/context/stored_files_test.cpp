#include "context/stored_files.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "context/test_support.hpp"
#include "util/atomic_file.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

TEST(StoredFiles, DriversSeeAbsolutePathsOfTheStoredCopiesOnly) {
  TempDir tmp;
  ContextStore store(tmp.path() / "config");
  Context ctx = context_with_id();
  ASSERT_TRUE(store_option_file(store, ctx, "tls-ca", "pem"));
  fs::path copy = store.data_dir(ctx) / "files" / "tls-ca";
  EXPECT_EQ(*util::read_file(copy), "pem");

  Options options{{"tls-ca", "files/tls-ca"},
                  {"tls-servername", "files/tls-ca"},  // not a file option: untouched
                  {"config", "/somewhere/else"}};      // a file option without its stored name
  Options resolved = resolve_stored_files(store, ctx, options, {"tls-ca", "config"});
  EXPECT_EQ(resolved.at("tls-ca"), copy.string());
  EXPECT_EQ(resolved.at("tls-servername"), "files/tls-ca");
  EXPECT_EQ(resolved.at("config"), "/somewhere/else");

  remove_option_file(store, ctx, "tls-ca");
  EXPECT_FALSE(fs::exists(copy));
}

TEST(StoredFiles, ImportedOptionsMustNameFilesTheArchiveCarries) {
  std::vector<std::string> keys{"tls-ca"};
  EXPECT_TRUE(check_stored_files({{"tls-ca", "files/tls-ca"}}, keys, {"files/tls-ca"}));
  EXPECT_TRUE(check_stored_files({{"other", "x"}}, keys, {}));
  auto escaped = check_stored_files({{"tls-ca", "/etc/shadow"}}, keys, {"files/tls-ca"});
  ASSERT_FALSE(escaped);
  EXPECT_EQ(escaped.error().message(),
            "option 'tls-ca' must name its stored file 'files/tls-ca', not '/etc/shadow'");
  auto missing = check_stored_files({{"tls-ca", "files/tls-ca"}}, keys, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "option 'tls-ca' names 'files/tls-ca', which is missing");
}

TEST(StoredFiles, AStoredFileNoOptionNamesIsRefused) {
  Options builder{{"tls-ca", "files/tls-ca"}};
  Options runner{{"runner-tls-ca", "files/runner-tls-ca"}};
  std::vector<FileOptionSet> sets{{&builder, {"tls-ca", "tls-cert"}}, {&runner, {"runner-tls-ca"}}};
  EXPECT_EQ(unnamed_stored_file(
                {"files/tls-ca", "files/runner-tls-ca", "buildkitd.toml", "ssh_known_hosts"}, sets),
            std::nullopt);
  EXPECT_EQ(unnamed_stored_file({"files/tls-ca", "files/tls-cert"}, sets), "files/tls-cert");
  // A file option's stored name belongs to its own key only.
  Options crossed{{"tls-ca", "files/tls-cert"}};
  EXPECT_EQ(unnamed_stored_file({"files/tls-cert"}, {{&crossed, {"tls-ca"}}}), "files/tls-cert");
  EXPECT_EQ(unnamed_stored_file({"files/sub/x"}, sets), "files/sub/x");
}

TEST(StoredFiles, OnlyRegularFilesOfBoundedSizeAreRead) {
  TempDir tmp;
  fs::path big = tmp.path() / "big";
  ASSERT_TRUE(util::write_file_atomically(big, std::string(kMaxOptionFileBytes + 1, 'x'), 0600));
  auto too_big = read_option_file(big.string(), "--buildkitd-config");
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().message(),
            "cannot read --buildkitd-config '" + big.string() + "': larger than 1 MiB");
  auto fifo = read_option_file("/dev/null", "--builder-tls-ca");
  ASSERT_FALSE(fifo);
  EXPECT_EQ(fifo.error().message(), "cannot read --builder-tls-ca '/dev/null': not a regular file");
}

}  // namespace
}  // namespace envd::context
