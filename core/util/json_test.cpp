#include "util/json.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace envd::util {
namespace {

namespace json = boost::json;

// What `--format json` prints: numbers as a person and jq read them ("1.5",
// not Boost.JSON's "1.5E0"), the same values either way.
TEST(UtilJson, DoublesAreWrittenShortAndReadBackTheSame) {
  json::value v = json::object{{"cpus", 1.5}, {"none", 0.0}, {"tiny", 1e-10},
                               {"big", 1e21}, {"n", 3},      {"list", json::array{0.25, "x"}}};
  EXPECT_EQ(to_compact_json(v),
            R"({"cpus":1.5,"none":0,"tiny":1e-10,"big":1e+21,"n":3,"list":[0.25,"x"]})"
            "\n");
  EXPECT_EQ(to_pretty_json(json::object{{"cpus", 0.5}}), "{\n  \"cpus\": 0.5\n}\n");
  // The same numbers back (a whole double reads back as an integer: JSON
  // has one kind of number).
  for (const std::string& text : {to_compact_json(v), to_pretty_json(v)}) {
    auto back = parse_json(text, "test");
    ASSERT_TRUE(back) << back.error().message();
    for (const auto& [key, value] : v.as_object()) {
      const json::value& read = back->as_object().at(key);
      if (value.is_number()) {
        EXPECT_EQ(read.to_number<double>(), value.to_number<double>()) << key << " in " << text;
      } else {
        EXPECT_EQ(read, value) << key << " in " << text;
      }
    }
  }
}

}  // namespace
}  // namespace envd::util
