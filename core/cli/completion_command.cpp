// Shell completion. `envd completion bash|zsh|fish` prints a script for the
// shell; the script asks envd itself what may come next (`envd __complete
// WORD... PARTIAL`), so commands, flags and values never go stale against the
// binary: commands and flags are read from the CLI11 tree, context names from
// the store (read only, never created), builder and runner types from the
// registry (the manifest cache; no module is loaded into envd).
#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "cli/commands.hpp"
#include "cli/global_flags.hpp"
#include "context/store.hpp"
#include "util/data_out.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;

// The scripts. Each passes the words after `envd` up to the cursor, the
// partial word last, and offers what envd prints, one candidate per line.
constexpr const char* kBashScript = R"(# envd completion for bash: source it, or put it in
# /usr/share/bash-completion/completions/envd
_envd_complete() {
  local IFS=$'\n'
  COMPREPLY=($(envd __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _envd_complete envd
)";

// Where envd has nothing to offer (a file argument: `context export NAME
// FILE`, `build DIR`) each shell completes file names.
constexpr const char* kZshScript = R"(#compdef envd
# envd completion for zsh: put it on $fpath as _envd, or source it
_envd() {
  local -a candidates
  candidates=("${(@f)$(envd __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=(${candidates:#})
  if (( ${#candidates} )); then
    compadd -- "${candidates[@]}"
  else
    _files
  fi
}
# Autoloaded from $fpath, this file is _envd's body and runs at the first TAB:
# complete at once. Sourced, it only registers the function.
if [[ "${funcstack[1]}" == _envd ]]; then
  _envd "$@"
else
  compdef _envd envd
fi
)";

constexpr const char* kFishScript =
    R"(# envd completion for fish: put it in ~/.config/fish/completions/envd.fish
# __envd_complete_words WORD... PARTIAL: what may come next, or file names.
function __envd_complete_words
    set -l candidates (envd __complete $argv 2>/dev/null)
    if test (count $candidates) -gt 0
        printf '%s\n' $candidates
    else
        __fish_complete_path $argv[-1]
    end
end
complete -c envd -f -a '(__envd_complete_words (commandline -opc)[2..] (commandline -ct))'
)";

// CLI11 gives a flag expected(0); its type size is that of its variable (1 for a bool).
bool is_flag(const CLI::Option* option) { return option->get_expected_max() == 0; }

bool has_long_name(const CLI::Option* option, const std::string& name) {
  const auto& names = option->get_lnames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The option of `app` (or of an app above it, whose options fall through)
// that `word` names, or null.
const CLI::Option* find_option(const CLI::App* app, const std::string& word) {
  std::string name = word.substr(0, word.find('='));
  for (const CLI::App* at = app; at != nullptr; at = at->get_parent()) {
    for (const CLI::Option* option : at->get_options()) {
      if (!option->nonpositional()) continue;
      for (const auto& l : option->get_lnames()) {
        if (name == "--" + l) return option;
      }
      for (const auto& s : option->get_snames()) {
        if (name == "-" + s) return option;
      }
    }
  }
  return nullptr;
}

const CLI::App* root_of(const CLI::App* app) {
  while (app->get_parent() != nullptr) app = app->get_parent();
  return app;
}

const CLI::App* find_subcommand(const CLI::App* app, const std::string& word) {
  for (const CLI::App* sub : app->get_subcommands({})) {
    if (sub->get_name().empty() || sub->get_name().rfind("__", 0) == 0) continue;
    if (sub->check_name(word)) return sub;
  }
  return nullptr;
}

std::vector<std::string> context_names(Invocation& invocation) {
  std::vector<std::string> names;
  auto store = invocation.store();
  std::error_code ec;
  if (!store || !fs::exists(store->file(), ec)) return names;
  auto list = store->load();
  if (!list) return names;
  for (const auto& c : list->contexts) names.push_back(c.name);
  return names;
}

// What may follow `option` of `app`: its fixed values, or names envd knows.
std::vector<std::string> option_values(Invocation& invocation, const CLI::App* app,
                                       const CLI::Option* option) {
  auto is = [option](const char* name) { return has_long_name(option, name); };
  // `context rm --name NAME`, the user's guide's form: an existing context
  // (create's --name is a new one).
  if (is("name") && app->get_parent() != nullptr && app->get_parent()->get_name() == "context") {
    return app->get_name() == "create" ? std::vector<std::string>{} : context_names(invocation);
  }
  if (is("format")) return {"table", "json"};
  if (is("progress")) return {"auto", "tty", "plain", "quiet"};
  if (is("network")) return {"default", "none", "host"};
  if (is("env-network")) return {"none", "host", "bridge"};
  if (is("output")) {
    return {"type=local,dest=",  "type=tar,dest=",   "type=oci,dest=",
            "type=docker,dest=", "type=image,name=", "type=moby,name="};
  }
  if (is("cache-to")) {
    return {"type=registry,ref=", "type=local,dest=", "type=inline"};
  }
  if (is("cache-from")) {
    return {"type=registry,ref=", "type=local,src="};
  }
  if (is("context")) return context_names(invocation);
  if (is("builder")) return invocation.registry(/*quiet=*/true).types(plugin::Kind::builder);
  if (is("runner")) return invocation.registry(/*quiet=*/true).types(plugin::Kind::runner);
  return {};
}

// Positional values worth offering after `given` (the positional words
// already typed for `app`): context names where a command takes one (only
// for the first word where it takes one: `context export NAME FILE`; never
// one already named where it takes several), the shells of `completion`.
std::vector<std::string> positional_values(Invocation& invocation, const CLI::App* app,
                                           const std::vector<std::string>& given) {
  const CLI::App* parent = app->get_parent();
  const std::string& name = app->get_name();
  if (parent == root_of(app) && name == "completion") {
    return given.empty() ? std::vector<std::string>{"bash", "fish", "zsh"}
                         : std::vector<std::string>{};
  }
  if (parent == root_of(app) && name == "help") {
    // `envd help context cr<TAB>`: the command words below those given.
    const CLI::App* at = parent;
    for (const auto& word : given) {
      at = find_subcommand(at, word);
      if (at == nullptr) return {};
    }
    std::vector<std::string> names;
    for (const CLI::App* sub : at->get_subcommands({})) {
      const std::string& sub_name = sub->get_name();
      if (!sub_name.empty() && sub_name.rfind("__", 0) != 0) names.push_back(sub_name);
    }
    return names;
  }
  if (parent == nullptr || parent->get_name() != "context") return {};
  static const std::vector<std::string> one_name = {"use", "update", "rename", "export", "inspect"};
  static const std::vector<std::string> many_names = {"rm"};
  auto among = [&](const std::vector<std::string>& commands) {
    return std::find(commands.begin(), commands.end(), name) != commands.end();
  };
  if (among(one_name))
    return given.empty() ? context_names(invocation) : std::vector<std::string>{};
  if (!among(many_names)) return {};
  std::vector<std::string> names = context_names(invocation);
  names.erase(std::remove_if(names.begin(), names.end(),
                             [&](const std::string& n) {
                               return std::find(given.begin(), given.end(), n) != given.end();
                             }),
              names.end());
  return names;
}

// The words of the command `app` is: {"context", "create"} (none for the top).
std::vector<std::string> command_of(const CLI::App* app) {
  std::vector<std::string> command;
  for (; app->get_parent() != nullptr; app = app->get_parent()) {
    command.insert(command.begin(), app->get_name());
  }
  return command;
}

// Whether a flag of a command above `command` is offered to it: not one it
// would refuse. --buildkitd-image is for the commands that use a builder
// (global_flags.hpp).
bool offered_below(const CLI::Option* option, const std::vector<std::string>& command) {
  if (has_long_name(option, "buildkitd-image")) return uses_builder(command);
  return true;
}

}  // namespace

Status complete_command_line(Invocation& invocation, const CLI::App* root,
                             const std::vector<std::string>& words) {
  if (words.empty()) return {};
  const size_t last = words.size() - 1;
  std::string partial = words.back();
  std::string prefix;  // put before each candidate: the "--opt=" of a whole word
  const CLI::App* app = root;
  const CLI::Option* pending = nullptr;  // an option whose value comes next
  std::vector<std::string> positionals;  // the words for `app`'s positionals so far
  bool options_ended = false;            // after "--" every word is positional
  for (size_t i = 0; i < last; ++i) {
    const std::string& word = words[i];
    if (pending != nullptr) {
      pending = nullptr;
      continue;
    }
    if (word == "--") {
      options_ended = true;
      continue;
    }
    if (!options_ended && word.rfind('-', 0) == 0) {
      const CLI::Option* option = find_option(app, word);
      if (option != nullptr && !is_flag(option) && word.find('=') == std::string::npos) {
        pending = option;
        // bash splits "--format=js" at the '=' (it is in COMP_WORDBREAKS):
        // "--format" "=" "js". The "=" is no value; the word after it is,
        // and with the cursor right after the '=' the value is still empty.
        if (words[i + 1] == "=") {
          if (i + 1 == last) {
            partial.clear();
          } else {
            ++i;
          }
        }
      }
      continue;
    }
    const bool command_word = !options_ended && positionals.empty();
    if (const CLI::App* sub = command_word ? find_subcommand(app, word) : nullptr) {
      app = sub;
    } else {
      positionals.push_back(word);
    }
  }

  std::vector<std::string> candidates;
  const CLI::Option* joined = nullptr;  // zsh and fish pass "--format=js" whole
  if (pending == nullptr && !options_ended && partial.rfind("--", 0) == 0 &&
      partial.find('=') != std::string::npos) {
    joined = find_option(app, partial);
    if (joined != nullptr && is_flag(joined)) joined = nullptr;
  }
  if (pending != nullptr) {
    candidates = option_values(invocation, app, pending);
  } else if (joined != nullptr) {
    candidates = option_values(invocation, app, joined);
    prefix = partial.substr(0, partial.find('=') + 1);
    partial.erase(0, prefix.size());
  } else if (!options_ended && partial.rfind('-', 0) == 0) {
    for (const CLI::App* at = app; at != nullptr; at = at->get_parent()) {
      for (const CLI::Option* option : at->get_options()) {
        if (!option->nonpositional()) continue;
        if (at != app && !offered_below(option, command_of(app))) continue;
        for (const auto& l : option->get_lnames()) candidates.push_back("--" + l);
      }
      if (at == root) break;
    }
    candidates.emplace_back("--help");
  } else {
    for (const CLI::App* sub : app->get_subcommands({})) {
      const std::string& name = sub->get_name();
      if (options_ended || !positionals.empty() || name.empty() || name.rfind("__", 0) == 0) {
        continue;
      }
      candidates.push_back(name);
    }
    auto values = positional_values(invocation, app, positionals);
    candidates.insert(candidates.end(), values.begin(), values.end());
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  for (const auto& c : candidates) {
    if (c.rfind(partial, 0) == 0) fmt::print(util::data_out(), "{}{}\n", prefix, c);
  }
  return {};
}

void add_completion_commands(CLI::App& app, Invocation& /*invocation*/, Action& action) {
  auto shell = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("completion", "Print a shell completion script");
  cmd->add_option("shell", *shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  cmd->footer(
      "  bash: source <(envd completion bash)\n"
      "  zsh:  source <(envd completion zsh)   (after compinit)\n"
      "  fish: envd completion fish > ~/.config/fish/completions/envd.fish");
  cmd->callback([&action, shell] {
    action = [shell]() -> Status {
      if (*shell == "bash") fmt::print(util::data_out(), "{}", kBashScript);
      if (*shell == "zsh") fmt::print(util::data_out(), "{}", kZshScript);
      if (*shell == "fish") fmt::print(util::data_out(), "{}", kFishScript);
      return {};
    };
  });
}

}  // namespace envd::cli
