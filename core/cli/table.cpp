#include "cli/table.hpp"

#include <algorithm>

namespace envd::cli {
namespace {

// Appended in place: `context ls` renders a row per context, a thousand in a
// large store, on every TAB of shell completion.
void append_row(std::string& out, const std::vector<std::string>& cells,
                const std::vector<size_t>& widths) {
  const size_t start = out.size();
  for (size_t i = 0; i < widths.size(); ++i) {
    const size_t cell = i < cells.size() ? cells[i].size() : 0;
    if (cell != 0) out += cells[i];
    if (i + 1 < widths.size()) out.append(widths[i] - cell + 2, ' ');
  }
  // No trailing blanks; a row of blanks only keeps none.
  size_t end = out.find_last_not_of(' ');
  out.resize(end == std::string::npos || end < start ? start : end + 1);
  out += '\n';
}

}  // namespace

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < widths.size() && i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  size_t line = 1;
  for (size_t w : widths) line += w + 2;
  out.reserve(line * (rows.size() + 1));
  append_row(out, header, widths);
  for (const auto& row : rows) append_row(out, row, widths);
  return out;
}

}  // namespace envd::cli
