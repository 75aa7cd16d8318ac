#include "util/duration.hpp"

#include <gtest/gtest.h>

namespace envd::util {
namespace {

using std::chrono::milliseconds;

TEST(Duration, ParsesGoSyntax) {
  EXPECT_EQ(*parse_duration("10s", "x"), milliseconds(10000));
  EXPECT_EQ(*parse_duration("300ms", "x"), milliseconds(300));
  EXPECT_EQ(*parse_duration("1m30s", "x"), milliseconds(90000));
  EXPECT_EQ(*parse_duration("1.5h", "x"), milliseconds(5400000));
  EXPECT_EQ(*parse_duration("0", "x"), milliseconds(0));
  EXPECT_EQ(*parse_duration("2500us", "x"), milliseconds(3));
  // Under a millisecond is none (it rounded up to 1ms, which "1ms or more" took).
  EXPECT_EQ(*parse_duration("500us", "x"), milliseconds(0));
  EXPECT_EQ(*parse_duration("999999ns", "x"), milliseconds(0));
  EXPECT_EQ(*parse_duration("1ms", "x"), milliseconds(1));
}

TEST(Duration, RejectsWithTheSourceNamed) {
  for (const char* bad : {"", "10", "s", "10x", "1..5s", "-5s", "10 s"}) {
    auto r = parse_duration(bad, "BUILDKIT_CONNECTING_TIMEOUT");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message(), std::string("invalid duration '") + bad +
                                       "' in BUILDKIT_CONNECTING_TIMEOUT: expected e.g. 10s, "
                                       "300ms, 1m30s");
  }
}

}  // namespace
}  // namespace envd::util
