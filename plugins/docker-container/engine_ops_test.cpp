// What the driver reads from the Engine's inspect answer beyond the state:
// when the container started, in the Engine's RFC 3339 form.
#include <gtest/gtest.h>

#include <chrono>

#include "engine_ops.hpp"

namespace envd::plugins::docker_container {
namespace {

using std::chrono::sys_days;
using namespace std::chrono_literals;

TEST(EngineTime, ReadsTheEnginesFormWithOrWithoutAFraction) {
  auto expected = sys_days(std::chrono::year(2026) / 12 / 5) + 10h + 45min + 3s;
  EXPECT_EQ(parse_engine_time("2026-12-05T10:45:03.123456789Z"), expected);
  EXPECT_EQ(parse_engine_time("2026-12-05T10:45:03Z"), expected);
  EXPECT_EQ(parse_engine_time("2024-02-29T00:00:00.5Z"),
            sys_days(std::chrono::year(2024) / 2 / 29));
}

// Go's zero time is what a container that never started has; anything not
// in UTC's Z form, or not a date, is no time at all (the driver then does
// not take the container for one that started a moment ago).
TEST(EngineTime, RefusesWhatIsNotAStartTime) {
  for (const char* text :
       {"0001-01-01T00:00:00Z", "", "2026-12-05", "2026-12-05T10:45:03",
        "2026-12-05T10:45:03+01:00", "2026-12-05T10:45:03.Z1", "2026-13-05T10:45:03Z",
        "2026-02-30T10:45:03Z", "2026-12-05T24:00:00Z", "2026-12-05 10:45:03Z",
        "2026-12-05T10:45:03ZZ", "2o26-12-05T10:45:03Z"}) {
    EXPECT_EQ(parse_engine_time(text), std::nullopt) << text;
  }
}

}  // namespace
}  // namespace envd::plugins::docker_container
