#include "cli/empty_values.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace envd::cli {
namespace {

// The options allow_empty() marked since the last refuse_empty_values(). A
// process builds one command line; the list is emptied after each walk, so a
// later app (a test builds many) cannot find an old option's address in it.
std::vector<const CLI::Option*>& marked() {
  static std::vector<const CLI::Option*> options;
  return options;
}

// CLI11 reports it as "--file: <this>", and main adds where to find help.
const CLI::Validator& non_empty() {
  static const CLI::Validator check(
      [](const std::string& value) {
        return value.empty() ? std::string("the value is empty (leave the flag out instead)")
                             : std::string();
      },
      "", "non-empty");
  return check;
}

void refuse_in(CLI::App& app, const std::vector<const CLI::Option*>& allowed) {
  for (CLI::Option* option : app.get_options()) {
    const bool positional = !option->nonpositional();
    const bool flag = option->get_expected_min() == 0;
    if (positional || flag || std::find(allowed.begin(), allowed.end(), option) != allowed.end()) {
      continue;
    }
    // First, before a check of its own (a range) words an empty value its way.
    option->transform(non_empty());
  }
  for (CLI::App* sub : app.get_subcommands({})) refuse_in(*sub, allowed);
}

}  // namespace

std::vector<std::string> split_empty_assignments(int argc, const char* const* argv) {
  std::vector<std::string> words;
  words.reserve(static_cast<std::size_t>(argc) + 1);
  bool options_ended = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word == "--") options_ended = true;
    if (!options_ended && i > 0 && word.size() > 3 && word.substr(0, 2) == "--" &&
        word.back() == '=' && word.find('=') == word.size() - 1) {
      words.emplace_back(word.substr(0, word.size() - 1));
      words.emplace_back();
      continue;
    }
    words.emplace_back(word);
  }
  return words;
}

CLI::Option* allow_empty(CLI::Option* option) {
  marked().push_back(option);
  return option;
}

void forget_empty_marks() { marked().clear(); }

void refuse_empty_values(CLI::App& app) {
  refuse_in(app, marked());
  marked().clear();
}

CLI::Validator non_empty_word(const std::string& what) {
  return CLI::Validator(
      [what](const std::string& text) {
        return text.empty() ? "'' is not " + what : std::string();
      },
      "", "non-empty");
}

}  // namespace envd::cli
