// Which context a command uses: --context NAME, else $ENVD_CONTEXT, else the
// stored current context, else "default". Documented in docs/contexts.md.
#pragma once

#include <optional>
#include <string>

#include "context/context.hpp"
#include "envd/result.hpp"

namespace envd::context {

enum class ContextSource { flag, environment, store, fallback };

struct ResolvedContext {
  Context context;
  ContextSource source;
};

// The name the rule picks and where it came from, before any lookup.
struct ContextChoice {
  std::string name;
  ContextSource source;
};

// The rule alone: `flag` if given (even empty), else ENVD_CONTEXT when
// non-empty, else `stored_current` when non-empty, else "default". Neither
// validates nor looks up the name: for callers that need it even when no such
// context exists (`context ls` marks it; `context use` warns when ENVD_CONTEXT
// overrides the context it just made current). Reads ENVD_CONTEXT with getenv:
// do not call while another thread sets it.
ContextChoice choose_context(const std::string& stored_current,
                             const std::optional<std::string>& flag);

// Chooses the context with choose_context(list.current, flag) and looks it up
// in `list`: `flag` is the --context value if given (even empty); an empty
// list.current means none is stored. The name is validated first
// (Errc::invalid_argument, "invalid context name 'a/b' (from ENVD_CONTEXT):
// <rule>"). An unknown name is Errc::not_found and says where it came from:
//   context 'x' (from --context) does not exist; ...
//   context 'x' (from ENVD_CONTEXT) does not exist; ...
//   current context 'x' in '<list.file>' does not exist; run 'envd context use NAME'
//   context 'default' does not exist and no current context is set; ...
// Reads ENVD_CONTEXT with getenv: do not call while another thread sets it.
Result<ResolvedContext> resolve_context(const ContextList& list,
                                        const std::optional<std::string>& flag);

// "--context", "ENVD_CONTEXT", "the store's current context" or "the default".
const char* describe(ContextSource source);

}  // namespace envd::context
