#include "util/text.hpp"

#include <gtest/gtest.h>

namespace envd::util {
namespace {

// A message's continuation lines (indented by two spaces, as every
// multi-line message envd makes is) stay lines; any other newline is a
// quoted value's and is escaped, so the message cannot start a line of its
// own at the left margin.
TEST(PrintableLines, KeepsIndentedContinuationLinesOnly) {
  EXPECT_EQ(printable_lines("exited; its last log lines:\n  one\n  two"),
            "exited; its last log lines:\n  one\n  two");
  EXPECT_EQ(printable_lines("unknown driver option 'im\nage'"),
            "unknown driver option 'im\\x0aage'");
  EXPECT_EQ(printable_lines("cannot read 'a\nenvd: error: fake'\n  log \x1b[2J line"),
            "cannot read 'a\\x0aenvd: error: fake'\n  log \\x1b[2J line");
  EXPECT_EQ(printable_lines("trailing\n"), "trailing\\x0a");
  EXPECT_EQ(printable_lines("one space\n x"), "one space\\x0a x");
  EXPECT_EQ(printable_lines("\n\n  x"), "\\x0a\n  x");
  EXPECT_EQ(printable_lines(""), "");
}

}  // namespace
}  // namespace envd::util

namespace envd::sdk {
namespace {

// A name in a URL's path stays one segment whatever it holds.
TEST(UrlPathSegment, EncodesAllButTheUnreservedCharacters) {
  EXPECT_EQ(url_path_segment("alice-1.x_y~z"), "alice-1.x_y~z");
  EXPECT_EQ(url_path_segment("a\"b/../c d?e#f%"), "a%22b%2F..%2Fc%20d%3Fe%23f%25");
  EXPECT_EQ(url_path_segment("j\xc3\xb6rg\xff"), "j%C3%B6rg%FF");
  EXPECT_EQ(url_path_segment(""), "");
}

}  // namespace
}  // namespace envd::sdk
