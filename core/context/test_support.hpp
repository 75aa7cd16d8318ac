// The core/context unit tests use the shared test helpers (util/test_support.hpp)
// under their own namespace.
#pragma once

#include "util/test_support.hpp"

namespace envd::context {
namespace testing = ::envd::util::testing;
}  // namespace envd::context
