// Driver options whose values are files (plugin_abi.h, ABI 1.1): TLS material,
// a daemon config. The user gives a path; the core copies the file into the
// context's private directory as files/<key> (0600) and stores the option's
// value as that relative name, so the context keeps working when the original
// moves and `context export` carries the file. Drivers see the absolute path
// of the copy (resolve_stored_files).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "context/context.hpp"
#include "context/store.hpp"
#include "envd/result.hpp"

namespace envd::context {

// The largest file an option may name (1 MiB: certificates and configs are small).
inline constexpr std::size_t kMaxOptionFileBytes = std::size_t{1} << 20;

// What `envd login` stores in the private directory for the context's runner
// (envd-server; docs/envd-server.md): a credential, so `context export`
// leaves it out.
inline constexpr const char* kRunnerLoginFile = "runner-login.json";

// The private directory's subdirectory for what a driver keeps only while it
// runs on this machine (the docker-container driver mounts it where buildkitd
// makes its socket): `context export` leaves it out.
inline constexpr const char* kRuntimeDir = "run";

// The value stored for file option `key`: "files/<key>".
std::string stored_file_value(std::string_view key);

// Whether `relative_path` (in the private directory) is a file option staged
// by an update (files/.<key>.new, file_staging.hpp) rather than a stored one:
// what an update killed half-way leaves, which export leaves out and import
// refuses.
bool is_staged_file(std::string_view relative_path);

// Reads the file a user named for an option. `what` names it in errors, e.g.
// "--builder-tls-ca": "cannot read --builder-tls-ca 'ca.pem': No such file or
// directory". Refuses anything but a regular file of at most
// kMaxOptionFileBytes.
Result<std::string> read_option_file(const std::string& path, const std::string& what);

// Writes `content` as the stored copy of option `key` (creating the private
// directory), atomically and 0600.
Status store_option_file(const ContextStore& store, const Context& context, std::string_view key,
                         std::string_view content);

// Removes the stored copy of option `key`, if any.
void remove_option_file(const ContextStore& store, const Context& context, std::string_view key);

// `options` with every file option among `file_keys` whose value is its
// stored name replaced by the absolute path of the copy.
Options resolve_stored_files(const ContextStore& store, const Context& context,
                             const Options& options, const std::vector<std::string>& file_keys);

// For imported and stored contexts: every file option among `file_keys` that
// is set must hold its stored name and the file must be among
// `material_paths` (paths relative to the private directory). The error names
// the option.
Status check_stored_files(const Options& options, const std::vector<std::string>& file_keys,
                          const std::vector<std::string>& material_paths);

// One driver's options with the keys among them that are file options.
struct FileOptionSet {
  const Options* options;
  std::vector<std::string> file_keys;
};

// For imported and exported contexts: the first path among `material_paths`
// under files/ that is not the stored file of a file option set in one of
// `sets`. Such a file is used by nothing, yet an import would install it and
// every export carry it on, so both refuse it.
std::optional<std::string> unnamed_stored_file(const std::vector<std::string>& material_paths,
                                               const std::vector<FileOptionSet>& sets);

}  // namespace envd::context
