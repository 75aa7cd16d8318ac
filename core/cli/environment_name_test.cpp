#include "cli/environment_name.hpp"

#include <gtest/gtest.h>

#include <string>

namespace envd::cli {
namespace {

TEST(EnvironmentName, IsTheDirectoryLowerCasedInDockersAlphabet) {
  EXPECT_EQ(environment_name_from("My_Project"), "my_project");
  EXPECT_EQ(environment_name_from("web app (copy)"), "webappcopy");
  EXPECT_EQ(environment_name_from("v1.2-rc"), "v1.2-rc");
  EXPECT_EQ(environment_name_from("caf\xc3\xa9"), "caf");
}

TEST(EnvironmentName, StartsWithALetterOrDigit) {
  EXPECT_EQ(environment_name_from(".hidden"), "hidden");
  EXPECT_EQ(environment_name_from("__-x2"), "x2");
}

TEST(EnvironmentName, KeepsThirtyCharacters) {
  EXPECT_EQ(environment_name_from(std::string(40, 'a')), std::string(30, 'a'));
}

// Docker's names have two characters at least.
TEST(EnvironmentName, AShortOneIsPrefixedAndNothingLeftIsEnvdEnv) {
  EXPECT_EQ(environment_name_from("A"), "envd-a");
  EXPECT_EQ(environment_name_from("_b"), "envd-b");
  EXPECT_EQ(environment_name_from(""), "envd-env");
  EXPECT_EQ(environment_name_from("\xe2\x9c\x93"), "envd-env");
  EXPECT_EQ(environment_name_from("..."), "envd-env");
}

}  // namespace
}  // namespace envd::cli
