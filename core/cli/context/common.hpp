// What several `envd context` commands share: the NAME / --name NAME
// arguments, the missing-context error, address checks through the drivers,
// the name of the context in use and the listing of a context's private files.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/invocation.hpp"
#include "context/context.hpp"
#include "context/store.hpp"
#include "envd/result.hpp"

namespace envd::cli {

// Context names as given positionally (NAME) and by --name NAME.
struct NameArgs {
  std::vector<std::string> positional;
  std::vector<std::string> flagged;

  // The positional names, then the flagged ones.
  std::vector<std::string> all() const;
};

// Whether --version was given on the command line, at any level: it answers
// before a command's own checks of its arguments, as --help does.
bool version_asked(const CLI::App* cmd);

// Whether the parse left a word it could not place (an unknown flag such as
// `-x`): CLI11 reports it once the whole parse is over, and that is the
// mistake to name, not the missing name a command's own check would see.
bool words_left_over(const CLI::App* cmd);

// Declares NAME and --name NAME ("Name of the context") on `cmd`, filling
// `args`. NAME may follow `--`.
void add_name_args(CLI::App* cmd, NameArgs& args);

// The one context name a command takes: exactly one in `args`, and a valid
// name (Errc::invalid_argument otherwise).
Result<std::string> one_context_name(const NameArgs& args);

// Errc::not_found: "context 'x' does not exist; 'envd context ls' lists the
// contexts".
Status missing_context(const std::string& name);

// `address` in the normalised form of the builder (runner) driver `type`;
// loads that driver, whose error is returned when it is missing or refuses
// the address.
Result<std::string> normalize_builder_address(Invocation& invocation, const std::string& type,
                                              const std::string& address);
Result<std::string> normalize_runner_address(Invocation& invocation, const std::string& type,
                                             const std::string& address);

// The name of the context commands would use (context::choose_context), even
// when no such context exists: what `ls` and `inspect` mark as current.
std::string context_in_use(const context::ContextList& list, const Invocation& invocation);

// TLS material given as `flag` 'value' with `content`: a PEM file holding a
// block whose label ends in `block` ("CERTIFICATE"; "PRIVATE KEY" also takes
// "RSA PRIVATE KEY"). A swapped or binary file is caught here rather than
// as a handshake failure at the first build; the error names the flag, the
// file and the blocks it does hold.
Status check_pem(std::string_view content, const std::string& flag, const std::string& value,
                 std::string_view block);

// The TLS file option `key` given as `flag` 'value' with `content`: the PEM
// block it is for (check_pem), and for a CA file ("tls-ca",
// "runner-tls-ca") no private key beside the certificates: a CA's signing
// key would be stored, and exported with the context, without a word.
Status check_tls_file(std::string_view key, std::string_view content, const std::string& flag,
                      const std::string& value);

// A stored file option's content, held to what create holds a file to: at
// most kMaxOptionFileBytes, and a TLS file the PEM block it is for. The
// errors name it as `what` '`name`' ("entry 'material/files/tls-ca'").
Status check_option_file(const std::string& key, std::string_view content, const std::string& what,
                         const std::string& name);

// The PEM block the TLS file option `key` must hold ("tls-ca", "tls-cert"
// and "runner-tls-ca": CERTIFICATE; "tls-key": PRIVATE KEY), or an empty
// view for an option that is no TLS file (a daemon config).
std::string_view tls_file_block(std::string_view key);

// Whether file option `key` is a CA file ("tls-ca", "runner-tls-ca"), whose
// every certificate is read with OpenSSL before it is stored.
bool is_ca_file(std::string_view key);

// Paths, relative to the context's private directory and sorted, of the
// regular files and symbolic links in it (links not followed); empty when it
// does not exist; an error naming what cannot be read.
Result<std::vector<std::string>> material_files(const context::ContextStore& store,
                                                const context::Context& ctx);

}  // namespace envd::cli
