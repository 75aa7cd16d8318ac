// `envd context export/import`: a context and its private material as a tar.
//
// Layout (docs/design/context-store.md):
//   meta.json              the context record (name, builder, builder_address,
//                          runner, runner_address, builder_options, runner_options,
//                          and any unknown fields; never id or current)
//   material/              a directory entry for material/ and each subdirectory
//   material/<rel path>    each regular file of the context's private directory
// The tar is pax (restricted, i.e. plain ustar unless a name needs more),
// deterministic: entries sorted by path, mtime 0, uid/gid 0, mode 0600 for
// files and 0700 for directories, so one context always gives the same bytes.
// Import is strict: regular files and directories only, no absolute paths, no
// "." or ".." or empty components, no backslashes, printable ASCII names of at
// most 1024 characters, only meta.json and material/..., no duplicates, at most
// kMaxArchiveBytes in all. Export applies the same name rules, so whatever it
// writes imports.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "context/context.hpp"
#include "context/store.hpp"
#include "envd/result.hpp"

namespace envd::context {

// The largest archive import reads and export writes (10 MiB, docker's cap).
inline constexpr std::size_t kMaxArchiveBytes = std::size_t{10} * 1024 * 1024;

struct ContextArchive {
  Context context;  // id is empty; name is the one recorded at export
  // (path relative to the private directory, '/'-separated; content), sorted by path.
  std::vector<std::pair<std::string, std::string>> material;
};

// Builds the archive for `context` (reading its private directory, which may be
// missing: no material). Errors ("cannot export context 'x': ..."): a symbolic
// link, special file or unsuitably named file in the private directory (each
// named), an unreadable file, an archive over kMaxArchiveBytes.
Result<std::string> export_archive(const ContextStore& store, const Context& context);

// Parses and validates an archive. `source` names it in messages ("file 'x.tar'",
// "standard input"). Every failure is one line, Errc::invalid_argument:
//   <source> is not a valid context archive: entry 'material/../x' has a '..' path component
// meta.json is checked like a store record (valid name, string fields, options
// of strings) and must not carry "id" or "current".
Result<ContextArchive> parse_archive(std::string_view bytes, std::string_view source);

// Writes the archive's material (0600 files, 0700 directories) into the
// context's private directory (ensure_data_dir; the context needs a valid id).
// Paths are re-checked first, so a hand-built ContextArchive cannot escape the
// directory. If writing fails and the directory was created by this call, it is
// removed again.
Status install_material(const ContextStore& store, const Context& context,
                        const ContextArchive& archive);

}  // namespace envd::context
