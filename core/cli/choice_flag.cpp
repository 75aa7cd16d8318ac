#include "cli/choice_flag.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "util/text.hpp"

namespace envd::cli {

CLI::Validator one_of(std::vector<std::string> choices) {
  std::string listed;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) listed += i + 1 == choices.size() ? " or " : ", ";
    listed += choices[i];
  }
  return CLI::Validator(
      [choices = std::move(choices), listed](const std::string& text) {
        if (std::find(choices.begin(), choices.end(), text) != choices.end()) return std::string();
        return "'" + util::printable(text, 40) + "' is not one of " + listed;
      },
      "", "choice");
}

}  // namespace envd::cli
