// Plain-text tables for list commands: left-aligned columns as wide as their
// widest cell, separated by two spaces, no borders, no trailing blanks.
#pragma once

#include <cstddef>
#include <cstdio>
#include <deque>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace envd::cli {

// Cells are views, not copies: `context ls` lists a thousand contexts on every
// TAB of shell completion, and copying each field into a row of strings cost
// more than the rendering. A cell views a string that outlives render(): the
// caller's, or one the table keeps (keep()).
class Table {
 public:
  explicit Table(std::initializer_list<std::string_view> header);

  void reserve(std::size_t rows);
  // Missing cells are empty; cells beyond the header's are dropped.
  void add_row(std::initializer_list<std::string_view> cells);
  // Keeps `text` for as long as the table lives, and returns a view of it.
  std::string_view keep(std::string text);

  std::string render() const;
  // The rendering, written to `out` (stdio reports a failed write at exit).
  void print(std::FILE* out) const;

 private:
  std::size_t rows() const;  // the header included
  void append_row(std::string& out, std::size_t row) const;

  std::size_t columns_;
  std::vector<std::string_view> cells_;  // row after row, the header first
  std::vector<std::size_t> widths_;
  std::deque<std::string> kept_;  // a deque never moves what it holds
};

}  // namespace envd::cli
