// Reading contexts.json's text into a ContextList (internal to the store).
//
// Two readers, one answer. The one-pass reader builds the records while the
// tokens arrive and knows only the shape envd itself writes: the known fields
// with their usual types. It declines anything else (an unknown or repeated
// field, an odd type, a rule broken, invalid JSON) without a word, and the
// tree reader reads the whole text again: it keeps unknown fields and words
// every error. A store envd wrote is read once, without a tree: `context ls`
// on 1,000 contexts, run on every TAB of shell completion, spent half its
// time building and walking the tree.
//
// Whenever the one-pass reader gives a list, the tree reader gives an equal
// one (fuzz_context_store checks it on every input).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "context/context.hpp"
#include "envd/result.hpp"

namespace envd::context {

// The store's reading: the one-pass reader, else the tree reader. Errors name
// `file` ("context store '<file>' is corrupt: <why>; fix it or move it aside
// to start over with the default context"). The list's `file` is `file`.
Result<ContextList> parse_store(std::string_view text, const std::filesystem::path& file);

// The error parse_store() returns for a store that is not one envd wrote:
// Errc::invalid_argument, "context store '<file>' is corrupt: <reason>; ...".
Error corrupt_store(const std::filesystem::path& file, const std::string& reason);

// The one-pass reader: the list, or nothing when the text is off its shape.
// The list's `file` is empty.
std::optional<ContextList> read_store_in_one_pass(std::string_view text);

// The tree reader, for any text.
Result<ContextList> read_store_tree(std::string_view text, const std::filesystem::path& file);

// The rules that span contexts: unique names, unique ids. The message is the
// bare reason ("two contexts are named 'a'").
Status check_list(const ContextList& list);

// Gives every context without an id one derived from its name
// (derived_context_id), unique in the list.
void derive_missing_ids(ContextList& list);

// "'<path>'", printable, as the store's messages quote a file.
std::string quoted(const std::filesystem::path& path);

}  // namespace envd::context
