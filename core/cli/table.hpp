// Plain-text tables for list commands: left-aligned columns as wide as their
// widest cell, separated by two spaces, no borders, no trailing blanks.
#pragma once

#include <cstddef>
#include <cstdio>
#include <initializer_list>
#include <memory>
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
  // Keeps `parts` joined for as long as the table lives, and returns a view of
  // them: keep({ctx.builder, "://", ctx.builder_address}).
  std::string_view keep(std::initializer_list<std::string_view> parts);

  // Writes the table to `out`. A failed write throws std::system_error with
  // the reason, as fmt::print does (main turns it into one line).
  void print(std::FILE* out) const;

 private:
  std::size_t rows() const;  // the header included
  void append_row(std::string& out, std::size_t row) const;

  std::size_t columns_;
  std::vector<std::string_view> cells_;  // row after row, the header first
  std::vector<std::size_t> widths_;
  // Kept text, in blocks that never move once allocated: one allocation per
  // block, not per string.
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* free_ = nullptr;  // the last block's unused bytes: [free_, end_)
  char* end_ = nullptr;
};

}  // namespace envd::cli
