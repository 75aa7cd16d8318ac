// The runner option flag of `context create` and `context update`:
// --runner-tls-ca FILE, the CA certificate an https:// runner (envd-server) is
// verified with. It is the runner's file option `runner-tls-ca`, copied into
// the store as files/runner-tls-ca like the builder's TLS files (named apart
// from them, since both share the context's files/ directory).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "cli/context/builder_options.hpp"
#include "cli/invocation.hpp"
#include "context/context.hpp"
#include "envd/result.hpp"

namespace envd::cli {

inline constexpr const char* kRunnerTlsCaKey = "runner-tls-ca";

// Declares --runner-tls-ca on `cmd`, filling `flag`.
void add_runner_option_flags(CLI::App* cmd, std::optional<std::string>& flag);

// The runner's options after applying --runner-tls-ca (`flag`; "" removes it)
// to `current`, validated by the `runner` driver, with the CA's content to
// stage. Errors: a runner that takes no CA, an unreadable or non-PEM file.
Result<OptionChange> change_runner_options(Invocation& invocation, const std::string& runner,
                                           const context::Options& current,
                                           const std::optional<std::string>& flag);

}  // namespace envd::cli
