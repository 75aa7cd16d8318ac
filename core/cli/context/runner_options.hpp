// The runner option flags of `context create` and `context update`:
// --runner-opt KEY=VALUE (repeatable; KEY= removes KEY), checked by the runner
// driver, and --runner-tls-ca FILE, the CA certificate an https:// runner
// (envd-server) is verified with. That is the runner's file option
// `runner-tls-ca`, copied into the store as files/runner-tls-ca like the
// builder's TLS files (named apart from them, since both share the context's
// files/ directory).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/context/builder_options.hpp"
#include "cli/invocation.hpp"
#include "context/context.hpp"
#include "envd/result.hpp"

namespace envd::cli {

inline constexpr const char* kRunnerTlsCaKey = "runner-tls-ca";

struct RunnerOptionFlags {
  std::optional<std::string> tls_ca;  // --runner-tls-ca ("" removes it on update)
  std::vector<std::string> opts;      // --runner-opt KEY=VALUE
  bool any() const { return tls_ca.has_value() || !opts.empty(); }
};

// Declares --runner-opt and --runner-tls-ca on `cmd`, filling `flags`.
void add_runner_option_flags(CLI::App* cmd, RunnerOptionFlags& flags, OptionVerb verb);

// The runner's options after applying `flags` to `current`, validated by the
// `runner` driver, with the CA's content to stage. Errors: a malformed
// KEY=VALUE, a file option set through --runner-opt, a runner that takes no
// CA, an unreadable or non-PEM file, or the driver's own refusal.
Result<OptionChange> change_runner_options(Invocation& invocation, const std::string& runner,
                                           const context::Options& current,
                                           const RunnerOptionFlags& flags);

// Refuses a context whose runner CA could never be used: its runner address
// is plain http://, which no certificate verifies (create, update, import).
Status check_runner_tls_ca(const context::Context& ctx);

}  // namespace envd::cli
