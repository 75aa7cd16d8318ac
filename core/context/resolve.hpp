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

// Resolves and looks up the context. `flag` is the --context value if given
// (even empty); ENVD_CONTEXT counts only when non-empty; an empty list.current
// means none is stored. The name is validated first (Errc::invalid_argument,
// "invalid context name 'a/b' (from ENVD_CONTEXT): <rule>"). An unknown name is
// Errc::not_found and says where it came from:
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
