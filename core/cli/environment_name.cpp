#include "cli/environment_name.hpp"

#include <cctype>

namespace envd::cli {

std::string environment_name_from(std::string_view basename) {
  auto alphanumeric = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  std::string name;
  for (char c : basename) {
    if (alphanumeric(c) || c == '_' || c == '.' || c == '-') {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!name.empty() && !alphanumeric(name.front())) name.erase(0, 1);
  if (name.size() > 30) name.resize(30);
  if (name.empty()) return "envd-env";
  if (name.size() < 2) return "envd-" + name;
  return name;
}

}  // namespace envd::cli
