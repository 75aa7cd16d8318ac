// `envd login` and `envd logout`: their flags. They run in envd-client
// (login_run.cpp), which holds the HTTPS client.
#include <memory>
#include <string>

#include "cli/client/program.hpp"
#include "cli/commands.hpp"
#include "cli/runner_target.hpp"

namespace envd::cli {

void add_login_commands(CLI::App& app, Invocation& invocation, Action& action) {
  auto flags = std::make_shared<LoginRequest>();
  CLI::App* login =
      app.add_subcommand("login", "Log in to the envd server of the context's runner");
  login->add_option("-u,--username", flags->username,
                    "Login name (default: <user>-<host>, registered in no-auth mode)");
  login->add_flag("--password-stdin", flags->password_stdin,
                  "Read the password from stdin (without one, the server is taken to run in "
                  "no-auth mode)");
  add_runner_timeout_flag(*login, flags->timeout, "the envd server", "30s");
  login->callback([&invocation, &action, flags] {
    action = [&invocation, flags] {
      return run_in_client(
          [&](const ClientApi& client) { return client.login(invocation, *flags); });
    };
  });
  CLI::App* logout =
      app.add_subcommand("logout", "Remove the login to the envd server of the context's runner");
  logout->callback([&invocation, &action] {
    action = [&invocation] {
      return run_in_client([&](const ClientApi& client) { return client.logout(invocation); });
    };
  });
}

}  // namespace envd::cli
