// The table through which the CLI's code reaches the commands that talk to a
// daemon or read an archive: those linked only into envd-client, with
// BuildKit's gRPC client and its protobuf code, TLS (OpenSSL) and libarchive
// (program.hpp). envd keeps every command's flags and help, and holds no entry
// of this table: a command that needs one runs in envd-client. Internal, never
// installed as a header.
#pragma once

#include <string>

#include "cli/build_command.hpp"
#include "cli/invocation.hpp"
#include "envd/result.hpp"

namespace envd::cli {

// `envd prune`'s flags, checked by the command.
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
  std::string timeout;  // --timeout, checked as it was read; "" for 30s
};

// A client certificate and key a context is given, with where each came from
// for messages ("--builder-tls-cert 'cert.pem'").
struct TlsPair {
  std::string cert_pem;
  std::string key_pem;
  std::string cert_source;
  std::string key_source;
};

// The client's commands. Each runs one command with the invocation the CLI
// parsed into; it prints what the command prints and reports failure through
// its Status.
struct ClientApi {
  Status (*build)(Invocation& invocation, const BuildRequest& request);
  Status (*builder_status)(Invocation& invocation, const std::string& format,
                           const std::string& timeout);
  Status (*bootstrap)(Invocation& invocation, bool recreate, const std::string& format,
                      const std::string& timeout);
  Status (*builder_stop)(Invocation& invocation, const std::string& timeout_flag);
  Status (*builder_rm)(Invocation& invocation, bool keep_cache, const std::string& timeout_flag);
  Status (*prune)(Invocation& invocation, const PruneRequest& request);
  Status (*login)(Invocation& invocation, const LoginRequest& request);
  Status (*logout)(Invocation& invocation);
  Status (*context_export)(Invocation& invocation, const std::string& name,
                           const std::string& file);
  Status (*context_import)(Invocation& invocation, const std::string& name,
                           const std::string& file);
  // Not a command: `context create|update`'s check that a client key is its
  // certificate's (OpenSSL's, which envd itself does not load).
  Status (*check_tls_pair)(const TlsPair& pair);
  // Likewise, that a CA file's every certificate can be read: `source` names
  // the file in the error ("--builder-tls-ca 'ca.pem'").
  Status (*check_tls_ca)(const std::string& pem, const std::string& source);
};

}  // namespace envd::cli
