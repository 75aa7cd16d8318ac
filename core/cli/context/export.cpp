// `envd context export`: a context and its private material as a tar archive,
// to a new file or to standard output: the flags. It runs in envd-client
// (export_run.cpp), which holds libarchive.
#include <memory>
#include <string>

#include "cli/client/program.hpp"
#include "cli/context/context_commands.hpp"
#include "cli/empty_values.hpp"

namespace envd::cli {

void add_context_export_command(CLI::App& group, Invocation& invocation, Action& action) {
  auto name = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  CLI::App* cmd =
      group.add_subcommand("export", "Write a context and its private material as a tar archive");
  cmd->add_option("name", *name, "Name of the context")->required();
  // '' (an unset variable) is not standard output: the archive holds keys.
  cmd->add_option("file", *file, "Output file, created new (default or '-': standard output)")
      ->check(non_empty_word("a file name ('-' is standard output)"));
  cmd->callback([&invocation, &action, name, file] {
    action = [&invocation, name, file] {
      return run_in_client(
          [&](const ClientApi& client) { return client.context_export(invocation, *name, *file); });
    };
  });
}

}  // namespace envd::cli
