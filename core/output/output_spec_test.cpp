#include "output/output_spec.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace envd::output {
namespace {

using Destination = OutputSpec::Destination;

std::string error_of(std::string_view value, bool terminal = false) {
  auto r = parse_output(value, terminal);
  return r ? std::string("(accepted)") : r.error().message();
}

TEST(OutputSpec, ImageAttributesPassThroughUnchanged) {
  auto r = parse_output(
      "type=image,name=127.0.0.1:5000/x:y,push=true,registry.insecure=true,"
      "Compression=zstd",
      false);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->type, "image");
  EXPECT_EQ(r->destination, Destination::none);
  EXPECT_EQ(r->attrs, (std::map<std::string, std::string>{{"name", "127.0.0.1:5000/x:y"},
                                                          {"push", "true"},
                                                          {"registry.insecure", "true"},
                                                          {"compression", "zstd"}}));
}

// buildx's type=registry is type=image,push=true: no daemon has a
// "registry" exporter ("exporter \"registry\" could not be found").
TEST(OutputSpec, RegistryIsAPushedImage) {
  auto r = parse_output("type=registry,name=127.0.0.1:5000/x:y", false);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->type, "image");
  EXPECT_EQ(r->attrs,
            (std::map<std::string, std::string>{{"name", "127.0.0.1:5000/x:y"}, {"push", "true"}}));
  EXPECT_TRUE(parse_output("type=registry,name=x,push=true", false));
  EXPECT_EQ(error_of("type=registry,name=x,push=false"),
            "type=registry pushes: push=false contradicts it (use type=image to keep the image on "
            "the builder)");
}

TEST(OutputSpec, QuotedValuesMayHoldCommas) {
  auto r = parse_output(R"(type=image,"name=a/b:1,a/b:2",push=true)", false);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->attrs.at("name"), "a/b:1,a/b:2");
}

TEST(OutputSpec, LocalNeedsADirectory) {
  auto r = parse_output("type=local,dest=out", false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->destination, Destination::directory);
  EXPECT_EQ(r->dest, "out");
  EXPECT_TRUE(r->attrs.empty());
  EXPECT_EQ(error_of("type=local"), "output directory is required for local exporter");
}

// docker build's shorthand: PATH is type=local,dest=PATH; '-' a tar on
// standard output (never a terminal).
TEST(OutputSpec, APathAloneIsALocalDirectoryAndADashATar) {
  auto dir = parse_output("./out", false);
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->type, "local");
  EXPECT_EQ(dir->destination, Destination::directory);
  EXPECT_EQ(dir->dest, "./out");
  auto commas = parse_output("out,b", false);
  ASSERT_TRUE(commas);
  EXPECT_EQ(commas->dest, "out,b");
  auto dash = parse_output("-", false);
  ASSERT_TRUE(dash);
  EXPECT_EQ(dash->type, "tar");
  EXPECT_EQ(dash->destination, Destination::standard_output);
  EXPECT_EQ(error_of("-", true),
            "output file is required for tar exporter. refusing to write to console");
}

TEST(OutputSpec, TarballsGoToAFileOrToStdoutButNeverAConsole) {
  for (const char* type : {"tar", "oci", "docker"}) {
    auto file = parse_output(std::string("type=") + type + ",dest=out.tar", false);
    ASSERT_TRUE(file);
    EXPECT_EQ(file->destination, Destination::file);
    auto stream = parse_output(std::string("type=") + type, false);
    ASSERT_TRUE(stream);
    EXPECT_EQ(stream->destination, Destination::standard_output);
    auto dash = parse_output(std::string("type=") + type + ",dest=-", false);
    ASSERT_TRUE(dash);
    EXPECT_EQ(dash->destination, Destination::standard_output);
    // The paths that name standard output are it, not files to open: inside
    // envd, descriptor 1 is stderr (util/data_out.hpp).
    for (const char* path : {"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"}) {
      auto named = parse_output(std::string("type=") + type + ",dest=" + path, false);
      ASSERT_TRUE(named) << path;
      EXPECT_EQ(named->destination, Destination::standard_output) << path;
      EXPECT_EQ(error_of(std::string("type=") + type + ",dest=" + path, true),
                std::string("output file is required for ") + type +
                    " exporter. refusing to write to console");
    }
    EXPECT_EQ(error_of(std::string("type=") + type, true),
              std::string("output file is required for ") + type +
                  " exporter. refusing to write to console");
  }
  EXPECT_EQ(error_of("type=tar,dest=" + std::filesystem::temp_directory_path().string()),
            "destination file is a directory");
}

TEST(OutputSpec, ErrorsAsEnvdUsersKnowThem) {
  EXPECT_EQ(error_of("name=x"), "--output requires type=<type>");
  EXPECT_EQ(error_of("type=image,push"), "invalid value push");
  EXPECT_EQ(error_of("type=tar,output=x.tar"),
            "output=x.tar not supported for --output, you meant dest=x.tar?");
  EXPECT_EQ(error_of("type=image,dest=x"), "output x is not supported by image exporter");
  EXPECT_EQ(error_of("type=moby,dest=x"), "output x is not supported by moby exporter");
  // Found before the build, not at its end by the daemon.
  EXPECT_EQ(error_of("type=local,dest=x,dest=y"), "key 'dest' is given twice");
  EXPECT_EQ(error_of("type=image,name=a,NAME=b"), "key 'name' is given twice");
  EXPECT_EQ(error_of("type=image,name=a,push=maybe"),
            "push=maybe is not a boolean (true or false)");
  EXPECT_EQ(error_of("type=image,name=a,push=True,unpack=0,registry.insecure=f"), "(accepted)");
  EXPECT_EQ(error_of("type=image,name=a,push="), "(accepted)");  // BuildKit: empty is true
}

TEST(OutputSpec, KeysAreLowerCasedValuesAreNot) {
  auto r = parse_output("TYPE=local,DEST=Out", false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "local");
  EXPECT_EQ(r->dest, "Out");
}

}  // namespace
}  // namespace envd::output
