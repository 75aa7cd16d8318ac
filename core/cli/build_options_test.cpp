#include "cli/build_options.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string message(const Status& st) { return st ? "" : st.error().message(); }
template <typename T>
std::string message(const Result<T>& r) {
  return r ? "" : r.error().message();
}

TEST(CacheFlags, RegistryEntriesKeepTheirAttributes) {
  auto entry = parse_cache_export("--cache-to", "type=registry,ref=reg:5000/app:cache,mode=max");
  ASSERT_TRUE(entry) << message(entry);
  EXPECT_EQ(entry->type, "registry");
  EXPECT_EQ(entry->attrs,
            (std::map<std::string, std::string>{{"ref", "reg:5000/app:cache"}, {"mode", "max"}}));
}

TEST(CacheFlags, ABareValueIsARegistryReference) {
  auto entry = parse_cache_import("--cache-from", "reg:5000/app:cache");
  ASSERT_TRUE(entry) << message(entry);
  EXPECT_EQ(entry->type, "registry");
  EXPECT_EQ(entry->attrs.at("ref"), "reg:5000/app:cache");
}

TEST(CacheFlags, LocalDirectoriesBecomeAbsolute) {
  auto entry = parse_cache_export("--cache-to", "type=local,dest=relative/cache");
  ASSERT_TRUE(entry) << message(entry);
  EXPECT_EQ(entry->attrs.at("dest"), (fs::current_path() / "relative/cache").string());
  auto from = parse_cache_import("--cache-from", "type=local,src=.");
  ASSERT_TRUE(from) << message(from);
  EXPECT_EQ(from->attrs.at("src"), fs::current_path().string());
}

TEST(CacheFlags, BadValuesSayWhatIsWrongInOneLine) {
  struct Case {
    bool exporting;
    std::string value;
    std::string says;
  };
  for (const auto& c : {
           Case{true, "", "expected type=TYPE"},
           Case{true, "mode=max", "type is missing"},
           Case{true, "type=registry", "type=registry needs ref=REF"},
           Case{true, "type=registry,ref=", "type=registry needs ref=REF"},
           Case{true, "type=local", "type=local needs dest=DIR"},
           Case{false, "type=local,dest=/tmp", "type=local needs src=DIR"},
           Case{false, "type=local,src=/etc/hostname", "'/etc/hostname' is not a directory"},
           Case{false, "type=inline", "type=inline is for --cache-to"},
           Case{true, "type=registry,ref=a,mode=most", "mode must be min or max"},
           Case{true, "type=registry,ref=a,ref=b", "'ref' is given twice"},
           Case{true, "type=registry,ref=a,oops", "field 'oops' is not KEY=VALUE"},
           Case{true, "type=registry,\"ref=a", "unterminated quote"},
           // A reference the registry would refuse, refused before the build.
           Case{false, "BAD REF", "invalid image reference 'BAD REF'"},
           Case{true, "type=registry,ref=Bad", "invalid image reference 'Bad'"},
       }) {
    auto r = c.exporting ? parse_cache_export("--cache-to", c.value)
                         : parse_cache_import("--cache-from", c.value);
    ASSERT_FALSE(r) << c.value;
    EXPECT_EQ(r.error().code(), Errc::invalid_argument);
    EXPECT_NE(r.error().message().find(c.says), std::string::npos)
        << c.value << ": " << r.error().message();
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << r.error().message();
  }
}

// A CI job's first run imports from the directory its last step will make:
// a missing one is taken here and skipped with a warning when the build
// starts, as buildx does.
TEST(CacheFlags, AMissingLocalCacheToImportIsNoError) {
  auto from = parse_cache_import("--cache-from", "type=local,src=/nonexistent/envd-cache");
  ASSERT_TRUE(from) << message(from);
  EXPECT_EQ(from->attrs.at("src"), "/nonexistent/envd-cache");
}

TEST(CacheFlags, UnknownTypesGoToTheDaemon) {
  auto entry = parse_cache_export("--cache-to", "type=gha,scope=ci");
  ASSERT_TRUE(entry) << message(entry);
  EXPECT_EQ(entry->type, "gha");
  EXPECT_EQ(entry->attrs.at("scope"), "ci");
}

TEST(BuildContexts, DirectoriesAndImages) {
  auto dir = parse_build_context("assets=.");
  ASSERT_TRUE(dir) << message(dir);
  EXPECT_EQ(dir->name, "assets");
  EXPECT_EQ(dir->directory, fs::current_path());
  auto image = parse_build_context("base=docker-image://127.0.0.1:5000/busybox:1");
  ASSERT_TRUE(image) << message(image);
  EXPECT_EQ(image->image, "docker-image://127.0.0.1:5000/busybox:1");
  EXPECT_TRUE(image->directory.empty());

  for (const std::string bad :
       {"assets", "=.", "assets=", "Assets=.", "x=/nonexistent/envd-dir", "x=docker-image://",
        "x=git://example/repo", "x=docker-image://BAD REF"}) {
    auto r = parse_build_context(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message().rfind("invalid --build-context", 0), 0U) << bad;
  }
}

TEST(FrontendFlags, BecomeTheDockerfileFrontendsAttributes) {
  FrontendFlags flags;
  flags.labels = {"org.opencontainers.image.source=https://example.com/x", "empty=", "bare"};
  flags.add_hosts = {"db:10.0.0.2", "v6:fe80::1", "other=10.0.0.3", "b6=[::1]"};
  flags.pull = true;
  flags.contexts = {NamedContext{"assets", "/srv/assets", ""},
                    NamedContext{"base", "", "docker-image://busybox"}};
  std::map<std::string, std::string> attrs;
  ASSERT_TRUE(add_frontend_flags(flags, attrs));
  EXPECT_EQ(attrs, (std::map<std::string, std::string>{
                       {"label:org.opencontainers.image.source", "https://example.com/x"},
                       {"label:empty", ""},
                       {"label:bare", ""},
                       {"add-hosts", "db=10.0.0.2,v6=fe80::1,other=10.0.0.3,b6=::1"},
                       {"image-resolve-mode", "pull"},
                       {"context:assets", "local:assets"},
                       {"context:base", "docker-image://busybox"}}));
}

TEST(FrontendFlags, BadValuesAreRefused) {
  std::map<std::string, std::string> attrs;
  FrontendFlags label;
  label.labels = {"=value"};
  EXPECT_EQ(message(add_frontend_flags(label, attrs)),
            "invalid --label '=value': expected KEY=VALUE or KEY");
  FrontendFlags host;
  host.add_hosts = {"db:not-an-ip"};
  EXPECT_EQ(message(add_frontend_flags(host, attrs)),
            "invalid --add-host 'db:not-an-ip': 'not-an-ip' is not an IPv4 or IPv6 address");
  // Only characters of addresses, but no address: the frontend would refuse
  // them after the session and the context were set up.
  for (const char* bad : {"h:1..2", "h:1.2.3.4:5", "h:01.2.3.4", "h:1.2.3", "h:fe80::1::2",
                          "h:[10.0.0.1", "h:::1]"}) {
    host.add_hosts = {bad};
    std::string ip = std::string(bad).substr(2);
    EXPECT_EQ(message(add_frontend_flags(host, attrs)), "invalid --add-host '" + std::string(bad) +
                                                            "': '" + ip +
                                                            "' is not an IPv4 or IPv6 address");
  }
  host.add_hosts = {"h:host-gateway"};
  EXPECT_EQ(message(add_frontend_flags(host, attrs)),
            "invalid --add-host 'h:host-gateway': envd does not resolve docker's 'host-gateway' "
            "(the Engine's address for the host): give the host's IP address");
  host.add_hosts = {"db"};
  EXPECT_EQ(message(add_frontend_flags(host, attrs)), "invalid --add-host 'db': expected HOST:IP");
  host.add_hosts = {"h\xff:10.0.0.1"};
  EXPECT_EQ(message(add_frontend_flags(host, attrs)),
            "invalid --add-host 'h\\xff:10.0.0.1': it is not UTF-8 text");

  label.labels = {
      "a\xff"
      "b=1"};
  EXPECT_EQ(message(add_frontend_flags(label, attrs)),
            "invalid --label 'a\\xffb=1': it is not UTF-8 text");
}

TEST(BuildMetadata, DecodesBase64JsonAsBuildxDoes) {
  // {"mediaType":"m","digest":"sha256:ab"} in base64, as BuildKit sends
  // containerimage.descriptor.
  std::map<std::string, std::string> response = {
      {"containerimage.digest", "sha256:abc"},
      {"containerimage.descriptor", "eyJtZWRpYVR5cGUiOiJtIiwiZGlnZXN0Ijoic2hhMjU2OmFiIn0="},
      {"image.name", "reg/app:1"},
      {"not.json", "aGVsbG8="}};
  json::object meta = build_metadata(response);
  EXPECT_EQ(meta.at("containerimage.digest").as_string(), "sha256:abc");
  EXPECT_EQ(meta.at("image.name").as_string(), "reg/app:1");
  ASSERT_TRUE(meta.at("containerimage.descriptor").is_object());
  EXPECT_EQ(meta.at("containerimage.descriptor").at("digest").as_string(), "sha256:ab");
  EXPECT_EQ(meta.at("not.json").as_string(), "aGVsbG8=");
}

TEST(RecordEnginePush, TheManifestDigestReplacesTheImageId) {
  std::map<std::string, std::string> response = {{"containerimage.digest", "sha256:id"}};
  record_engine_push(response, {"reg/app:1", "reg/app:2"}, "sha256:manifest");
  EXPECT_EQ(response.at("containerimage.digest"), "sha256:manifest");
  EXPECT_EQ(response.at("containerimage.config.digest"), "sha256:id");
  EXPECT_EQ(response.at("image.name"), "reg/app:1,reg/app:2");
  EXPECT_EQ(image_id(response), "sha256:id");
}

TEST(RecordEnginePush, KeepsWhatTheDaemonSaid) {
  std::map<std::string, std::string> response = {{"containerimage.digest", "sha256:id"},
                                                 {"containerimage.config.digest", "sha256:cfg"},
                                                 {"image.name", "daemon/name:1"}};
  record_engine_push(response, {"reg/app:1"}, "sha256:manifest");
  EXPECT_EQ(response.at("containerimage.digest"), "sha256:manifest");
  EXPECT_EQ(response.at("containerimage.config.digest"), "sha256:cfg");
  EXPECT_EQ(response.at("image.name"), "daemon/name:1");
  // An Engine that reported no digest for the push changes no digest.
  std::map<std::string, std::string> unreported = {{"containerimage.digest", "sha256:id"}};
  record_engine_push(unreported, {"reg/app:1"}, "");
  EXPECT_EQ(unreported.at("containerimage.digest"), "sha256:id");
  EXPECT_FALSE(unreported.count("containerimage.config.digest"));
}

TEST(ImageId, IsTheConfigDigestElseTheManifestDigest) {
  EXPECT_EQ(image_id({{"containerimage.digest", "sha256:m"},
                      {"containerimage.config.digest", "sha256:c"}}),
            "sha256:c");
  EXPECT_EQ(image_id({{"containerimage.digest", "sha256:m"}}), "sha256:m");
  EXPECT_EQ(image_id({}), "");
}

}  // namespace
}  // namespace envd::cli
