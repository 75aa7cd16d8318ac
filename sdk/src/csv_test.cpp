#include "envd/csv.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace envd::sdk {
namespace {

using Fields = std::vector<std::string>;

Fields fields_of(std::string_view text) {
  auto fields = split_csv_record(text, "--output");
  EXPECT_TRUE(fields) << fields.error().message();
  return fields ? *fields : Fields{};
}

std::string refusal(std::string_view text) {
  auto fields = split_csv_record(text, "--output");
  return fields ? std::string("accepted") : fields.error().message();
}

TEST(Csv, ReadsFieldsAsGoDoes) {
  EXPECT_EQ(fields_of("type=local,dest=out"), (Fields{"type=local", "dest=out"}));
  EXPECT_EQ(fields_of(""), (Fields{""}));
  EXPECT_EQ(fields_of("a,,b,"), (Fields{"a", "", "b", ""}));
  EXPECT_EQ(fields_of(R"("name=a,b",push=true)"), (Fields{"name=a,b", "push=true"}));
  EXPECT_EQ(fields_of(R"("say ""hi""",x)"), (Fields{R"(say "hi")", "x"}));
  EXPECT_EQ(fields_of(R"("")"), (Fields{""}));
}

// buildctl and docker refuse these (encoding/csv without LazyQuotes): a
// value taken as it stands would name another file ('dest="out' made a
// directory called "out).
TEST(Csv, AStrayQuoteIsRefusedAsGoRefusesIt) {
  EXPECT_EQ(refusal(R"(type=local,dest="out/q)"),
            R"(invalid --output 'type=local,dest="out/q': a '"' inside a field that is not )"
            R"(quoted (quote the whole field, "key=value", and write a '"' inside it as '""'))");
  EXPECT_EQ(refusal(R"("dest=a"b)"),
            R"(invalid --output '"dest=a"b': a character after the quote that ends a quoted )"
            R"(field (write a '"' inside it as '""'))");
  EXPECT_EQ(refusal(R"(a,"b)"), R"(invalid --output 'a,"b': unterminated quote)");
  EXPECT_EQ(refusal("a\nb"), "--output takes one CSV record, not several lines");
}

// Lazy (a driver's list options): a '"' that opens no field is a character.
TEST(Csv, LazyQuotesAreOrdinaryCharacters) {
  auto lazy = split_csv_record(R"(FOO="x","BAR=""y""",dest="out)", "env", CsvQuotes::lazy);
  ASSERT_TRUE(lazy) << lazy.error().message();
  EXPECT_EQ(*lazy, (Fields{R"(FOO="x")", R"(BAR="y")", R"(dest="out)"}));
  EXPECT_FALSE(split_csv_record(R"(a,"b)", "env", CsvQuotes::lazy));
}

TEST(Csv, AFieldWrittenByCsvFieldReadsBackUnchanged) {
  for (const std::string field : {"plain", "a,b", R"("lead)", R"(mid"dle)", "", "line\nbreak"}) {
    auto read = split_csv_record(csv_field(field) + ",next", "env", CsvQuotes::lazy);
    ASSERT_TRUE(read) << field;
    EXPECT_EQ(*read, (Fields{field, "next"})) << field;
  }
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), R"("a,b")");
}

}  // namespace
}  // namespace envd::sdk
