#include "output/image_push.hpp"

#include <gtest/gtest.h>
#include <stdio.h>

#include <string>

#include "output/test_support.hpp"
#include "util/test_support.hpp"

namespace envd::output {
namespace {

using util::testing::TempDir;
using util::testing::write_text;

PushReference parsed(std::string_view reference) {
  auto ref = parse_push_reference(reference);
  EXPECT_TRUE(ref) << (ref ? "" : ref.error().message());
  return ref ? *ref : PushReference{};
}

TEST(PushReference, SplitsRegistryRepositoryAndTag) {
  auto ref = parsed("127.0.0.1:5000/envd-e2e/pushed:v1");
  EXPECT_EQ(ref.registry, "127.0.0.1:5000");
  EXPECT_EQ(ref.repository, "127.0.0.1:5000/envd-e2e/pushed");
  EXPECT_EQ(ref.tag, "v1");
}

TEST(PushReference, APortColonIsNotATag) {
  auto ref = parsed("localhost:5000/app");
  EXPECT_EQ(ref.registry, "localhost:5000");
  EXPECT_EQ(ref.repository, "localhost:5000/app");
  EXPECT_EQ(ref.tag, "latest");
}

TEST(PushReference, ABracketedIpv6RegistryKeepsItsColons) {
  auto ref = parsed("[::1]:5000/app:v2");
  EXPECT_EQ(ref.registry, "[::1]:5000");
  EXPECT_EQ(ref.repository, "[::1]:5000/app");
  EXPECT_EQ(ref.tag, "v2");
  EXPECT_EQ(parsed("[fe80::1]/app").tag, "latest");
}

TEST(PushReference, NamesWithoutARegistryGoToDockerHub) {
  auto ref = parsed("team/app:1.2");
  EXPECT_EQ(ref.registry, "docker.io");
  EXPECT_EQ(ref.repository, "team/app");
  EXPECT_EQ(ref.tag, "1.2");
  auto bare = parsed("app");
  EXPECT_EQ(bare.registry, "docker.io");
  EXPECT_EQ(bare.repository, "app");
  EXPECT_EQ(bare.tag, "latest");
  EXPECT_EQ(parsed("ghcr.io/org/app:x").registry, "ghcr.io");
  EXPECT_EQ(parsed("localhost/app").registry, "localhost");
}

TEST(PushReference, RefusesDigestsAndInvalidNames) {
  auto digest = parse_push_reference(
      "127.0.0.1:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  ASSERT_FALSE(digest);
  EXPECT_EQ(digest.error().code(), Errc::invalid_argument);
  EXPECT_EQ(digest.error().message().rfind("cannot push '127.0.0.1:5000/app@sha256:", 0), 0u);
  EXPECT_NE(digest.error().message().find("give a tag instead"), std::string::npos);
  auto bad = parse_push_reference("127.0.0.1:5000/App:v1");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message().rfind("invalid image reference '127.0.0.1:5000/App:v1'", 0), 0u);
}

using testing::Capture;

constexpr const char* kPushStream[] = {
    R"({"status":"The push refers to repository [127.0.0.1:5000/envd-e2e/pushed]"})",
    R"({"status":"Preparing","progressDetail":{},"id":"5b8c72934dfc"})",
    R"({"status":"Pushing","progressDetail":{"current":512,"total":1024},"progress":"[==>  ]","id":"5b8c72934dfc"})",
    R"({"status":"Pushing","progressDetail":{"current":1024,"total":1024},"progress":"[=====>]","id":"5b8c72934dfc"})",
    R"({"status":"Pushed","progressDetail":{},"id":"5b8c72934dfc"})",
    R"({"status":"v1: digest: sha256:abc size: 527"})",
    R"({"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:abc","Size":527}})",
};

TEST(PushProgress, PlainShowsEachLayerStateOnce) {
  Capture out;
  PushProgress progress(ProgressMode::plain, out.file());
  for (const char* line : kPushStream) EXPECT_TRUE(progress.line(line));
  EXPECT_EQ(out.text(),
            "The push refers to repository [127.0.0.1:5000/envd-e2e/pushed]\n"
            "5b8c72934dfc: Preparing\n"
            "5b8c72934dfc: Pushing\n"
            "5b8c72934dfc: Pushed\n"
            "v1: digest: sha256:abc size: 527\n");
  EXPECT_EQ(progress.digest(), "sha256:abc");
}

TEST(PushProgress, QuietShowsNothingButStillFails) {
  Capture out;
  PushProgress progress(ProgressMode::quiet, out.file());
  for (const char* line : kPushStream) EXPECT_TRUE(progress.line(line));
  EXPECT_EQ(out.text(), "");
  auto failed = progress.line(
      R"({"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"denied"})");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message(), "denied: requested access to the resource is denied");
  auto bare = progress.line(R"({"error":"connection refused"})");
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.error().message(), "connection refused");
}

TEST(PushProgress, IgnoresLinesThatAreNotJson) {
  Capture out;
  PushProgress progress(ProgressMode::plain, out.file());
  EXPECT_TRUE(progress.line("not json"));
  EXPECT_TRUE(progress.line("[1,2]"));
  EXPECT_EQ(out.text(), "");
}

}  // namespace
}  // namespace envd::output
