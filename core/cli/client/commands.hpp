// Linked into envd-client only: the commands of its table (api.hpp), each defined beside the flags
// it serves (build_run.cpp, builder_run.cpp, login_run.cpp, context/export_run.cpp,
// context/import_run.cpp, context/tls_files_run.cpp). The CLI's code reaches them through the
// table.
#pragma once

#include <string>

#include "cli/build_command.hpp"
#include "cli/client/api.hpp"
#include "cli/invocation.hpp"
#include "envd/result.hpp"

namespace envd::cli {

// Builds as `envd build` does: resolves the context's builder, solves, and
// exports, loads or pushes as the request says.
Status run_build(Invocation& invocation, const BuildRequest& req);

// `envd builder status|stop|rm`, `envd bootstrap`, `envd prune`.
Status run_builder_status(Invocation& invocation, const std::string& format_flag,
                          const std::string& timeout_flag);
Status run_bootstrap(Invocation& invocation, bool recreate, const std::string& format_flag,
                     const std::string& timeout_flag);
Status run_builder_stop(Invocation& invocation, const std::string& timeout_flag);
Status run_builder_rm(Invocation& invocation, bool keep_cache, const std::string& timeout_flag);
Status run_prune(Invocation& invocation, const PruneRequest& flags);

// `envd login`, `envd logout`.
Status run_login(Invocation& invocation, const LoginRequest& flags);
Status run_logout(Invocation& invocation);

// `envd context export|import`.
Status run_context_export(Invocation& invocation, const std::string& name, const std::string& file);
Status run_context_import(Invocation& invocation, const std::string& name, const std::string& file);

// Whether `pair`'s key belongs to its certificate (the first in the file, the
// one TLS presents); Errc::invalid_argument naming both sources if not, or if
// either cannot be read (an encrypted key: no passphrase is ever asked for).
Status run_check_tls_pair(const TlsPair& pair);

// Whether every certificate in `pem` (a CA file, which may hold several) can
// be read, and there is at least one, as a TLS connection will load them;
// Errc::invalid_argument naming `source` with OpenSSL's reason if not.
Status run_check_tls_ca(const std::string& pem, const std::string& source);

}  // namespace envd::cli
