// envd-client's side of program.hpp: the client's commands are linked in.
#include "cli/client/commands.hpp"
#include "cli/client/program.hpp"

#include <cstdlib>

#include "util/terminal.hpp"

namespace envd::cli {

Status hand_over_to_client(int /*argc*/, const char* const* /*argv*/) {
  if (const char* closed = std::getenv(kClosedAtStartVariable); closed != nullptr) {
    for (const char* c = closed; *c != '\0'; ++c) {
      if (*c >= '0' && *c <= '2') util::note_closed_at_start(*c - '0');
    }
    // Not passed on to what envd-client runs (a helper, a shell).
    ::unsetenv(kClosedAtStartVariable);
  }
  return {};
}

Result<const ClientApi*> client_api() {
  static const ClientApi table = {
      &run_build,          &run_builder_status, &run_bootstrap,      &run_builder_stop,
      &run_builder_rm,     &run_prune,          &run_login,          &run_logout,
      &run_context_export, &run_context_import, &run_check_tls_pair, &run_check_tls_ca,
  };
  return &table;
}

}  // namespace envd::cli
