// The core/context unit tests use the shared test helpers (util/test_support.hpp)
// under their own namespace, and share a context with a private directory.
#pragma once

#include "context/context.hpp"
#include "util/test_support.hpp"

namespace envd::context {
namespace testing = ::envd::util::testing;

// The default context named "r" with a valid id, as if loaded from a store: the
// store gives it a private directory.
inline Context context_with_id() {
  Context ctx = default_context();
  ctx.name = "r";
  ctx.id = "0123456789abcdef";
  return ctx;
}

}  // namespace envd::context
