#include "cli/table.hpp"

#include <gtest/gtest.h>

#include <string>

namespace envd::cli {
namespace {

TEST(Table, ColumnsAreAsWideAsTheirWidestCellAndRowsEndWithoutBlanks) {
  Table table({"NAME", "TYPE", "ADDRESS"});
  std::string owned = "a-much-longer-name";
  table.add_row({owned, "tcp", table.keep(std::string("tcp://") + "10.0.0.1:1")});
  table.add_row({"b", "unix"});  // a missing cell is empty, and leaves no blanks
  table.add_row({"", "", ""});   // so is a row of empty cells
  table.add_row({"c", "x", "y", "dropped"});
  EXPECT_EQ(table.render(),
            "NAME                TYPE  ADDRESS\n"
            "a-much-longer-name  tcp   tcp://10.0.0.1:1\n"
            "b                   unix\n"
            "\n"
            "c                   x     y\n");
}

TEST(Table, KeptTextStaysValidAsTheTableGrows) {
  Table table({"N"});
  for (int i = 0; i < 1000; ++i) table.add_row({table.keep(std::to_string(i))});
  std::string out = table.render();
  EXPECT_EQ(out.substr(0, 8), "N\n0\n1\n2\n");
  EXPECT_EQ(out.substr(out.size() - 4), "999\n");
}

}  // namespace
}  // namespace envd::cli
