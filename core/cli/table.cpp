#include "cli/table.hpp"

#include <algorithm>

namespace envd::cli {

Table::Table(std::initializer_list<std::string_view> header)
    : columns_(header.size()), cells_(header), widths_(header.size()) {
  for (std::size_t i = 0; i < columns_; ++i) widths_[i] = cells_[i].size();
}

void Table::reserve(std::size_t rows) { cells_.reserve((rows + 1) * columns_); }

void Table::add_row(std::initializer_list<std::string_view> cells) {
  std::size_t i = 0;
  for (std::string_view cell : cells) {
    if (i == columns_) break;
    widths_[i] = std::max(widths_[i], cell.size());
    cells_.push_back(cell);
    ++i;
  }
  for (; i < columns_; ++i) cells_.emplace_back();
}

std::string_view Table::keep(std::string text) { return kept_.emplace_back(std::move(text)); }

std::string Table::render() const {
  std::string out;
  std::size_t line = 1;
  for (std::size_t w : widths_) line += w + 2;
  out.reserve(line * (cells_.size() / std::max<std::size_t>(columns_, 1)));
  for (std::size_t row = 0; row < cells_.size(); row += columns_) {
    const std::size_t start = out.size();
    for (std::size_t i = 0; i < columns_; ++i) {
      std::string_view cell = cells_[row + i];
      out += cell;
      if (i + 1 < columns_) out.append(widths_[i] - cell.size() + 2, ' ');
    }
    // No trailing blanks; a row of blanks only keeps none.
    std::size_t end = out.find_last_not_of(' ');
    out.resize(end == std::string::npos || end < start ? start : end + 1);
    out += '\n';
  }
  return out;
}

}  // namespace envd::cli
