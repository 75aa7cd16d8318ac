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

// Resolves and looks up the context. `flag` is the --context value if given. An
// unknown name is an error that says where the name came from.
Result<ResolvedContext> resolve_context(const ContextList& list,
                                        const std::optional<std::string>& flag);

// "--context", "ENVD_CONTEXT", "the store's current context" or "the default".
const char* describe(ContextSource source);

}  // namespace envd::context
