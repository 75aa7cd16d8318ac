// The client's commands (api.hpp) run in envd-client, envd's private program
// in <prefix>/libexec/envd/ that is the whole CLI linked with the BuildKit
// client, TLS and libarchive (core/cli/CMakeLists.txt says why). envd, which
// holds none of that, hands such a command line over to it whole: it executes
// envd-client in its own place, with the same arguments, environment and
// descriptors, so the command runs, prints and exits as if envd had run it.
#pragma once

#include <filesystem>
#include <utility>

#include "cli/client/api.hpp"
#include "cli/invocation.hpp"
#include "envd/result.hpp"

namespace envd::cli {

// Where envd-client is: ENVD_CLIENT_PROGRAM_RELATIVE (libexec/envd/envd-client)
// under the prefix of the running envd, in an install as in the build tree,
// so either can be moved anywhere.
Result<std::filesystem::path> client_program_path();

// Which of stdin, stdout and stderr envd found closed ("0", "12", ...): envd
// gives them stand-ins before executing envd-client, whose static
// initializers would otherwise take their numbers, and envd-client notes them
// from this variable (util::was_closed_at_start) and removes it.
inline constexpr const char* kClosedAtStartVariable = "ENVD_CLOSED_AT_START";

// Called first thing in main. In envd, when the command line names a command
// that runs in envd-client (and does not ask for help, which envd prints),
// executes envd-client and returns only if that failed: "cannot run '<path>':
// <reason>". Otherwise returns success: this program runs the command. In
// envd-client it notes the descriptors kClosedAtStartVariable names.
Status hand_over_to_client(int argc, const char* const* argv);

// The client's commands. In envd-client, its own table. In envd, a command
// that reaches this without having been handed over (a command line the list
// above missed) is handed over now, before it has done anything, and this
// returns only the failure to run envd-client.
Result<const ClientApi*> client_api();

// Runs `command` with the client's table: what each command callback that
// needs the client does.
template <class Command>
Status run_in_client(Command&& command) {
  auto api = client_api();
  if (!api) return api.error();
  return std::forward<Command>(command)(**api);
}

}  // namespace envd::cli
