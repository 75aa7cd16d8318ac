// `envd context export/import`: a context and its private material as a tar.
//
// Layout (docs/design/context-store.md):
//   meta.json              the context record (name, builder, builder_address,
//                          runner, runner_address, builder_options, runner_options)
//   material/<rel path>    each regular file of the context's private directory
// Import is strict: regular files and directories only, no absolute paths, no
// "..", no links, no backslashes, at most kMaxArchiveBytes in all.
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

inline constexpr std::size_t kMaxArchiveBytes = 10 * 1024 * 1024;

struct ContextArchive {
  Context context;  // id is empty; name is the one recorded at export
  std::vector<std::pair<std::string, std::string>> material;  // relative path, content
};

// Builds the archive for `context` (reading its private directory).
Result<std::string> export_archive(const ContextStore& store, const Context& context);

// Parses and validates an archive. `source` names it in messages ("file 'x.tar'",
// "standard input").
Result<ContextArchive> parse_archive(std::string_view bytes, std::string_view source);

// Writes the archive's material (0600 files, 0700 directories) into the
// context's private directory.
Status install_material(const ContextStore& store, const Context& context,
                        const ContextArchive& archive);

}  // namespace envd::context
