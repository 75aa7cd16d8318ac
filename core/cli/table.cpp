#include "cli/table.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "util/text.hpp"

namespace envd::cli {
namespace {

// Whether `cell` may go out as it is: printable ASCII only. Anything else
// (a control character, a byte of UTF-8) is looked at by util::printable.
bool plain_ascii(std::string_view cell) {
  return std::all_of(cell.begin(), cell.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte < 0x7f;
  });
}

// Columns on a terminal: one per character, so UTF-8's continuation bytes
// add none (wide East Asian characters are not told apart).
std::size_t columns_of(std::string_view cell) {
  return static_cast<std::size_t>(std::count_if(cell.begin(), cell.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }));
}

}  // namespace

Table::Table(std::initializer_list<std::string_view> header)
    : columns_(header.size()), cells_(header), widths_(header.size()) {
  for (std::size_t i = 0; i < columns_; ++i) widths_[i] = columns_of(cells_[i]);
}

void Table::reserve(std::size_t rows) { cells_.reserve((rows + 1) * columns_); }

void Table::add_row(std::initializer_list<std::string_view> cells) {
  std::size_t i = 0;
  for (std::string_view cell : cells) {
    if (i == columns_) break;
    // Cells come from daemons, servers and file names too: none may drive
    // the terminal or break the row. Escaped only when needed, so that a
    // listing of plain names copies nothing.
    std::string escaped;
    if (!plain_ascii(cell)) {
      escaped = util::printable(cell);
      if (escaped != cell) cell = keep({escaped});
    }
    widths_[i] = std::max(widths_[i], columns_of(cell));
    cells_.push_back(cell);
    ++i;
  }
  for (; i < columns_; ++i) cells_.emplace_back();
}

std::string_view Table::keep(std::initializer_list<std::string_view> parts) {
  constexpr std::size_t kBlock = 4096;
  std::size_t size = 0;
  for (std::string_view part : parts) size += part.size();
  if (static_cast<std::size_t>(end_ - free_) < size) {
    const std::size_t block = std::max(size, kBlock);
    free_ = blocks_.emplace_back(std::make_unique_for_overwrite<char[]>(block)).get();
    end_ = free_ + block;
  }
  char* start = free_;
  for (std::string_view part : parts) free_ = std::copy(part.begin(), part.end(), free_);
  return {start, size};
}

void Table::append_row(std::string& out, std::size_t row) const {
  const std::size_t start = out.size();
  for (std::size_t i = 0; i < columns_; ++i) {
    std::string_view cell = cells_[row * columns_ + i];
    out += cell;
    if (i + 1 < columns_) out.append(widths_[i] - columns_of(cell) + 2, ' ');
  }
  // No trailing blanks; a row of blanks only keeps none.
  std::size_t end = out.find_last_not_of(' ');
  out.resize(end == std::string::npos || end < start ? start : end + 1);
  out += '\n';
}

std::size_t Table::rows() const { return columns_ == 0 ? 0 : cells_.size() / columns_; }

void Table::print(std::FILE* out) const {
  // In chunks through one small buffer: a whole rendering of a thousand rows
  // would touch 20 fresh pages, a page fault each.
  constexpr std::size_t kChunk = 16384;
  std::string chunk;
  chunk.reserve(2 * kChunk);
  for (std::size_t row = 0; row < rows(); ++row) {
    append_row(chunk, row);
    if (chunk.size() >= kChunk || row + 1 == rows()) {
      // A failed write ends the listing as fmt::print's would (main reports
      // it): the reason is known only here.
      if (std::fwrite(chunk.data(), 1, chunk.size(), out) != chunk.size()) {
        throw std::system_error(errno, std::generic_category(), "cannot write the output");
      }
      chunk.clear();
    }
  }
}

}  // namespace envd::cli
