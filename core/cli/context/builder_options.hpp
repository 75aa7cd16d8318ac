// The builder option flags of `context create` and `context update`:
// --builder-opt KEY=VALUE and its named forms (--builder-tls-*,
// --buildkitd-config), applied to a context's options through its builder's
// driver. File options (stored_files.hpp) are read here; the caller stages
// their contents into the store (context/file_staging.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/invocation.hpp"
#include "context/context.hpp"
#include "envd/result.hpp"

namespace envd::cli {

// The option flags as parsed.
struct OptionFlags {
  std::vector<std::string> builder_opts;  // KEY=VALUE, repeatable
  std::optional<std::string> tls_ca;
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
  std::optional<std::string> tls_servername;
  std::optional<std::string> buildkitd_config;

  bool any() const {
    return !builder_opts.empty() || tls_ca || tls_cert || tls_key || tls_servername ||
           buildkitd_config;
  }
};

// Which command declares the option flags: on update '' removes a file
// option (or the TLS server name), on create it is refused as any empty
// value is (cli/empty_values.hpp).
enum class OptionVerb { create, update };

// Declares the option flags on `cmd`, filling `flags`.
void add_option_flags(CLI::App* cmd, OptionFlags& flags, OptionVerb verb);

// One option as the user gave it: the value, and the flag that gave it (for
// messages).
struct GivenOption {
  std::string value;
  std::string flag;
};
using GivenOptions = std::map<std::string, GivenOption>;

// Parses the option flags. A key given twice through --builder-opt gets the
// values joined with ',' (list options such as cap-add); a key given by both a
// named flag and --builder-opt is an error. An empty value means "remove".
Result<GivenOptions> given_options(const OptionFlags& flags);

// The builder's options after applying `given` to `current`, validated by the
// driver, and the contents of the files named by its file options (read now,
// written to the store by the caller). New file options hold their stored
// names (stored_file_value) in `options`.
struct OptionChange {
  context::Options options;                  // normalised by the driver
  std::map<std::string, std::string> files;  // file option key -> new content
  std::vector<std::string> removed_files;    // file option keys no longer set
};

// Loads the `builder` driver. Errors: a TLS flag for a builder that takes no
// TLS material, the driver refusing the options, an unreadable file, TLS
// material that is not PEM, a client key that is not its certificate's (one
// of the two may be `current`'s, stored under `stored_dir`, the context's
// private directory; empty on create).
Result<OptionChange> change_builder_options(Invocation& invocation, const std::string& builder,
                                            const context::Options& current,
                                            const GivenOptions& given,
                                            const std::filesystem::path& stored_dir = {});

}  // namespace envd::cli
