#include "output/image_name.hpp"

#include <gtest/gtest.h>

namespace envd::output {
namespace {

TEST(ImageName, AcceptsDockerReferences) {
  for (const char* ok :
       {"hello", "hello:dev", "library/hello:1.0", "127.0.0.1:5000/x:y",
        "registry.example.com/team/app", "localhost/app:latest", "a__b/c-d.e:TAG_1",
        "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}) {
    EXPECT_TRUE(validate_image_reference(ok)) << ok;
  }
}

TEST(ImageName, RejectsWithTheReason) {
  for (const char* bad : {"", "Hello", "a b", "x:", "x:-tag", "/x", "x/", "x//y", "x@sha256:zz"}) {
    auto st = validate_image_reference(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().message().rfind(std::string("invalid image reference '") + bad + "'", 0),
              0u)
        << st.error().message();
  }
}

TEST(ImageName, DefaultTagIsTheLowerCasedDirectoryName) {
  auto tag = default_image_tag("/work/projects/MyApp");
  ASSERT_TRUE(tag) << tag.error().message();
  EXPECT_EQ(*tag, "myapp:dev");
  auto spaced = default_image_tag("/tmp/my app");
  ASSERT_FALSE(spaced);
  EXPECT_NE(spaced.error().message().find("pass -t NAME[:TAG]"), std::string::npos);
}

}  // namespace
}  // namespace envd::output
