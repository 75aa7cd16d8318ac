// `envd context import`: a new context from an exported archive, which is
// untrusted and re-validated through the drivers: the flags. It runs in
// envd-client (import_run.cpp), which holds libarchive.
#include <memory>
#include <string>

#include "cli/client/program.hpp"
#include "cli/context/context_commands.hpp"
#include "cli/empty_values.hpp"

namespace envd::cli {

void add_context_import_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto name = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  CLI::App* cmd = group.add_subcommand("import", "Create a context from an exported archive");
  cmd->add_option("name", *name, "Name for the new context")->required();
  cmd->add_option("file", *file, "Archive file ('-': standard input)")
      ->required()
      ->check(non_empty_word("a file name ('-' is standard input)"));
  cmd->callback([&invocation, &action, name, file] {
    action = [&invocation, name, file] {
      return run_in_client(
          [&](const ClientApi& client) { return client.context_import(invocation, *name, *file); });
    };
  });
}

}  // namespace envd::cli
