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

// DEL and the C1 controls (0x9B is an 8-bit CSI) are escaped as the C0 ones
// are, in keys and values: the same text to a JSON reader, nothing a terminal
// obeys. Other text, U+00A0 and beyond included, is written as it is.
TEST(UtilJson, ControlCharactersOfEveryRangeAreEscaped) {
  json::value v = json::object{{"a\xc2\x9b",
                                "x\xc2\x9b"
                                "2J\x7f\x1b\xc2\x80\xc2\x9f"},
                               {"text",
                                "\xc2\xa0"
                                "caf\xc3\xa9 \xe2\x82\xac"}};
  const std::string text = to_compact_json(v);
  EXPECT_EQ(text,
            "{\"a\\u009b\":\"x\\u009b2J\\u007f\\u001b\\u0080\\u009f\",\"text\":\"\xc2\xa0"
            "caf\xc3\xa9 "
            "\xe2\x82\xac\"}\n");
  auto back = parse_json(text, "test");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, v);
  EXPECT_EQ(to_pretty_json(json::object{{"k", "\xc2\x9b"}}), "{\n  \"k\": \"\\u009b\"\n}\n");
  // Bytes that are not UTF-8 (a lone 0x9B is a CSI too) become U+FFFD, as Go
  // writes them: the output stays JSON.
  EXPECT_EQ(to_compact_json(json::object{{"path",
                                          "/a\x9b"
                                          "b/\xff\xc3"}}),
            "{\"path\":\"/a\xef\xbf\xbd"
            "b/\xef\xbf\xbd\xef\xbf\xbd\"}\n");
}

// A file envd rewrites must give back every number as it read it. Boost.JSON
// keeps integers of 64 bits exactly and reads the rest as doubles; which of
// those a write changes is what first_inexact_number tells.
TEST(UtilJson, TellsTheFirstNumberAWriteWouldChange) {
  auto first = [](std::string_view text) {
    auto value = parse_json(text, "test");
    EXPECT_TRUE(value) << value.error().message();
    return first_inexact_number(text, *value);
  };
  for (std::string_view kept :
       {R"({"a": 1, "b": [18446744073709551615, -9223372036854775808]})",
        R"([1.5, 1.50, 0.0, -0.0, 1e21, 1E+21, 1e-10, 0.001e3, 120.5e-1, 1e308, 5e-324])",
        R"({"x": "123456789012345678901"})"}) {
    auto found = first(kept);
    EXPECT_FALSE(found) << kept << ": " << found->written;
  }
  struct Case {
    std::string_view text;
    std::string_view written;
    std::string_view rewritten;
  };
  for (const Case& c : {
           Case{R"({"a": [1, 18446744073709551617]})", "18446744073709551617",
                "18446744073709551616"},
           Case{R"({"a": -9223372036854775809})", "-9223372036854775809", "-9223372036854775808"},
           Case{R"([0.1, 0.30000000000000001])", "0.30000000000000001", "0.3"},
           Case{R"({"a": 1e-400})", "1e-400", "0"},
       }) {
    auto found = first(c.text);
    ASSERT_TRUE(found) << c.text;
    EXPECT_EQ(found->written, c.written);
    EXPECT_EQ(found->rewritten, c.rewritten);
  }
  EXPECT_EQ(inexact_number_reason({"1e-400", "0"}),
            "the number 1e-400 cannot be kept exactly (a write would make it 0); quote it as a "
            "string");
}

}  // namespace
}  // namespace envd::util
