#include "output/export_rules.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace envd::output {
namespace {

using Attrs = std::map<std::string, std::string>;

OutputSpec output(const std::string& value) {
  auto spec = parse_output(value, false);
  EXPECT_TRUE(spec) << (spec ? "" : spec.error().message());
  return spec ? *spec : OutputSpec{};
}

ExportChoice chosen(const OutputSpec* spec, bool moby_worker, std::string_view builder) {
  auto choice = choose_export(spec, "app:dev", moby_worker, builder);
  EXPECT_TRUE(choice) << (choice ? "" : choice.error().message());
  return choice ? *choice : ExportChoice{};
}

TEST(ExportRules, WithoutOutputTheEnginesOwnBuildkitStoresTheImage) {
  auto choice = chosen(nullptr, true, "tcp");
  EXPECT_EQ(choice.exporter.type, "moby");
  EXPECT_EQ(choice.exporter.attrs, (Attrs{{"name", "app:dev"}}));
  EXPECT_FALSE(choice.load_into_engine);
}

TEST(ExportRules, WithoutOutputAnyOtherBuildkitSendsADockerTarballToLoad) {
  auto choice = chosen(nullptr, false, "docker-container");
  EXPECT_EQ(choice.exporter.type, "docker");
  EXPECT_EQ(choice.exporter.attrs, (Attrs{{"name", "app:dev"}}));
  EXPECT_TRUE(choice.load_into_engine);
  EXPECT_TRUE(choice.push_names.empty());
}

TEST(ExportRules, ImageBecomesMobyOnlyOnTheMobyWorkerBuilder) {
  auto spec = output("type=image,name=reg.example:5000/a/b:1,compression=zstd");
  auto moby = chosen(&spec, true, "moby-worker");
  EXPECT_EQ(moby.exporter.type, "moby");
  EXPECT_EQ(moby.exporter.attrs,
            (Attrs{{"name", "reg.example:5000/a/b:1"}, {"compression", "zstd"}}));
  EXPECT_TRUE(moby.push_names.empty());
  // Other builders get every attribute unchanged, even on a daemon with a
  // moby worker: a daemon without `image` answers with its own error.
  for (const char* builder : {"tcp", "unix", "docker-container", "kube-pod"}) {
    auto other = chosen(&spec, true, builder);
    EXPECT_EQ(other.exporter.type, "image") << builder;
    EXPECT_EQ(other.exporter.attrs, spec.attrs) << builder;
    EXPECT_FALSE(other.load_into_engine);
  }
}

TEST(ExportRules, PushOnTheMobyWorkerBuilderIsDoneByEnvdForEveryName) {
  auto spec = output(
      R"(type=image,"name=127.0.0.1:5000/x/y:v1,127.0.0.1:5000/x/y:v2",push=true,unpack=false)");
  auto choice = chosen(&spec, true, "moby-worker");
  EXPECT_EQ(choice.exporter.type, "moby");
  EXPECT_EQ(choice.exporter.attrs,
            (Attrs{{"name", "127.0.0.1:5000/x/y:v1,127.0.0.1:5000/x/y:v2"}, {"unpack", "false"}}));
  EXPECT_EQ(choice.push_names,
            (std::vector<std::string>{"127.0.0.1:5000/x/y:v1", "127.0.0.1:5000/x/y:v2"}));
}

TEST(ExportRules, PushFalseOrAbsentPushesNothing) {
  auto off = output("type=image,name=127.0.0.1:5000/x:v1,push=false");
  EXPECT_TRUE(chosen(&off, true, "moby-worker").push_names.empty());
  EXPECT_EQ(chosen(&off, true, "moby-worker").exporter.attrs.count("push"), 0u);
  // An empty value is true for BuildKit, and so it is here.
  auto empty = output("type=image,name=127.0.0.1:5000/x:v1,push=");
  EXPECT_EQ(chosen(&empty, true, "moby-worker").push_names,
            (std::vector<std::string>{"127.0.0.1:5000/x:v1"}));
}

TEST(ExportRules, PushWithoutANameUsesTheTag) {
  auto spec = output("type=image,push=true");
  auto choice = chosen(&spec, true, "moby-worker");
  EXPECT_EQ(choice.exporter.attrs, (Attrs{{"name", "app:dev"}}));
  EXPECT_EQ(choice.push_names, (std::vector<std::string>{"app:dev"}));
}

TEST(ExportRules, ADigestCannotBePushed) {
  auto spec = output(
      "type=image,name=127.0.0.1:5000/x@sha256:"
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef,push=true");
  auto choice = choose_export(&spec, "app:dev", true, "moby-worker");
  ASSERT_FALSE(choice);
  EXPECT_NE(choice.error().message().find("a digest names content"), std::string::npos);
}

TEST(ExportRules, OtherTypesPassThrough) {
  auto local = output("type=local,dest=out");
  auto choice = chosen(&local, true, "moby-worker");
  EXPECT_EQ(choice.exporter.type, "local");
  EXPECT_TRUE(choice.exporter.attrs.empty());
  auto moby = output("type=moby");
  EXPECT_EQ(chosen(&moby, true, "tcp").exporter.attrs, (Attrs{{"name", "app:dev"}}));
}

}  // namespace
}  // namespace envd::output
