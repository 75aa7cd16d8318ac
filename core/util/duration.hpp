// Durations as users type them, in Go's syntax (BUILDKIT_CONNECTING_TIMEOUT and
// friends come from the Go world): "10s", "300ms", "1m30s", "1.5h".
#pragma once

#include <chrono>
#include <string_view>

#include "envd/result.hpp"

namespace envd::util {

// Units: ns, us (or µs), ms, s, m, h; a bare "0" is zero. `what` names the
// source in errors ("BUILDKIT_CONNECTING_TIMEOUT", "--connect-timeout").
// Rounded to the nearest millisecond; less than one millisecond is zero.
Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what);

}  // namespace envd::util
