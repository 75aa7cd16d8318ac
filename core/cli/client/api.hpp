// The private interface between the envd executable and libenvd-client, the
// shared library holding what only commands that talk to a daemon or read an
// archive need: BuildKit's gRPC client and its protobuf code, TLS (OpenSSL),
// libarchive. The executable keeps every command's flags and help and opens
// the library on the first command that needs it (library.hpp), so `context
// ls`, `--help` and shell completion map none of those libraries.
//
// Internal, never installed as a header: both sides come from one build. The
// library's one C entry, envd_client_api(), returns a table that the
// executable checks (version, struct size, envd version, Invocation's size)
// before calling anything.
#pragma once

#include <cstdint>
#include <string>

#include "cli/build_command.hpp"
#include "cli/invocation.hpp"
#include "envd/plugin_abi.h"
#include "envd/result.hpp"

namespace envd::cli {

// `envd prune`'s flags, checked by the library.
struct PruneRequest {
  bool all = false;
  std::string keep_storage;
  std::string keep_duration;
  std::string format = "table";
  std::string timeout;
};

// `envd login`'s flags.
struct LoginRequest {
  std::string username;
  bool password_stdin = false;
};

// Bumped whenever a field of ClientApi or a request struct changes.
inline constexpr std::uint32_t kClientApiVersion = 1;

// What libenvd-client does for the executable. Each command entry runs one
// command with the invocation the executable parsed into; it prints what the
// command prints and reports failure through its Status.
struct ClientApi {
  std::uint32_t version;          // kClientApiVersion
  std::uint32_t size;             // sizeof(ClientApi)
  std::uint32_t invocation_size;  // sizeof(Invocation) in the library
  const char* envd_version;       // ENVD_VERSION the library was built as
  // Binds the library's own copy of the SDK to the invocation's host services
  // (as Invocation's constructor binds the executable's). Called once, first.
  void (*bind_host)(const envd_host_api* host);

  Status (*build)(Invocation& invocation, const BuildRequest& request);
  Status (*builder_status)(Invocation& invocation, const std::string& format,
                           const std::string& timeout);
  Status (*bootstrap)(Invocation& invocation, bool recreate, const std::string& format,
                      const std::string& timeout);
  Status (*builder_stop)(Invocation& invocation);
  Status (*builder_rm)(Invocation& invocation, bool keep_cache);
  Status (*prune)(Invocation& invocation, const PruneRequest& request);
  Status (*login)(Invocation& invocation, const LoginRequest& request);
  Status (*logout)(Invocation& invocation);
  Status (*context_export)(Invocation& invocation, const std::string& name,
                           const std::string& file);
  Status (*context_import)(Invocation& invocation, const std::string& name,
                           const std::string& file);
};

// The name of the library's entry: extern "C" const ClientApi* envd_client_api().
inline constexpr const char* kClientEntry = "envd_client_api";

}  // namespace envd::cli
