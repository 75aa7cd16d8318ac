// envd-client's side of program.hpp: the client's commands are linked in.
#include "cli/client/commands.hpp"
#include "cli/client/program.hpp"

namespace envd::cli {

Status hand_over_to_client(int /*argc*/, const char* const* /*argv*/) { return {}; }

Result<const ClientApi*> client_api() {
  static const ClientApi table = {
      &run_build,          &run_builder_status, &run_bootstrap,      &run_builder_stop,
      &run_builder_rm,     &run_prune,          &run_login,          &run_logout,
      &run_context_export, &run_context_import, &run_check_tls_pair,
  };
  return &table;
}

}  // namespace envd::cli
