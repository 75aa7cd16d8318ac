#include "cli/table.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace envd::cli {
namespace {

// What print() writes.
std::string printed(const Table& table) {
  char* data = nullptr;
  std::size_t size = 0;
  std::FILE* out = ::open_memstream(&data, &size);
  if (out == nullptr) return "open_memstream failed";
  table.print(out);
  std::fclose(out);
  std::string text(data, size);
  std::free(data);
  return text;
}

// A name from a daemon ("ev\x1b[31mil") cannot colour the terminal or
// start a line of its own; UTF-8 text is kept.
TEST(Table, ControlCharactersAreEscapedAndUtf8IsKept) {
  Table table({"NAME", "IMAGE"});
  table.add_row({"ev\x1b[31mil", "img\nsecond"});
  table.add_row({"caf\xc3\xa9", "ok"});
  EXPECT_EQ(printed(table),
            "NAME          IMAGE\n"
            "ev\\x1b[31mil  img\\x0asecond\n"
            "caf\xc3\xa9          ok\n");  // four columns wide, five bytes
}

TEST(Table, ColumnsAreAsWideAsTheirWidestCellAndRowsEndWithoutBlanks) {
  Table table({"NAME", "TYPE", "ADDRESS"});
  std::string owned = "a-much-longer-name";
  table.add_row({owned, "tcp", table.keep({"tcp://", "10.0.0.1:1"})});
  table.add_row({"b", "unix"});  // a missing cell is empty, and leaves no blanks
  table.add_row({"", "", ""});   // so is a row of empty cells
  table.add_row({"c", "x", "y", "dropped"});
  EXPECT_EQ(printed(table),
            "NAME                TYPE  ADDRESS\n"
            "a-much-longer-name  tcp   tcp://10.0.0.1:1\n"
            "b                   unix\n"
            "\n"
            "c                   x     y\n");
}

TEST(Table, KeptTextStaysValidAsTheTableGrows) {
  Table table({"N", "LONG"});
  const std::string wide(10000, 'w');  // more than a block of kept text
  for (int i = 0; i < 5000; ++i) {
    std::string n = std::to_string(i);
    table.add_row({table.keep({"#", n}), i == 2500 ? table.keep({wide, "!"}) : ""});
  }
  std::string out = printed(table);
  EXPECT_EQ(out.substr(0, 12), "N      LONG\n");
  EXPECT_NE(out.find("\n#2500  " + wide + "!\n"), std::string::npos);
  EXPECT_NE(out.find("\n#2501\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 6), "#4999\n");
}

}  // namespace
}  // namespace envd::cli
