// The executable's side of libenvd-client (api.hpp): finding and opening the
// library on first use.
#pragma once

#include <filesystem>
#include <utility>

#include "cli/client/api.hpp"
#include "cli/invocation.hpp"
#include "envd/result.hpp"

namespace envd::cli {

// Where libenvd-client is: ENVD_CLIENT_RELATIVE (lib/envd/libenvd-client.so)
// under the prefix of the running executable (its directory's parent), in an
// install as in the build tree, so either can be moved anywhere.
Result<std::filesystem::path> client_library_path();

// Opens libenvd-client on the first call (never closed) and checks its table;
// binds its SDK to `invocation`'s host. Later calls return the same table.
// Errors read "cannot load '<path>': <reason>" (dlerror's text, or the
// mismatch found); the CLI prints them as its one error line.
Result<const ClientApi*> client_api(Invocation& invocation);

// When the command line names a command that opens the library (build,
// builder, prune), starts opening it on a thread of its own, so that the
// dynamic loading (gRPC, protobuf, Abseil, OpenSSL: most of a build's start)
// overlaps the parsing and checking that come first. client_api() waits for
// it; a failure there is reported by client_api() as usual. Call once, first
// thing in main.
void prefetch_client_library(int argc, const char* const* argv);

// Opens the library (client_api) and runs `command` with its table: what each
// command callback that needs the library does.
template <class Command>
Status run_in_client(Invocation& invocation, Command&& command) {
  auto api = client_api(invocation);
  if (!api) return api.error();
  return std::forward<Command>(command)(**api);
}

}  // namespace envd::cli
