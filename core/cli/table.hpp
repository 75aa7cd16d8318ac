// Plain-text tables for list commands: left-aligned columns as wide as their
// widest cell, separated by two spaces, no borders, no trailing blanks.
#pragma once

#include <string>
#include <vector>

namespace envd::cli {

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace envd::cli
