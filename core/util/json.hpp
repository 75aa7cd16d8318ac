// The core's one set of JSON helpers (Boost.JSON): parsing with a located error
// message, pretty printing, and typed field access for hand-written schemas.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "envd/result.hpp"

namespace envd::util {

// Parses `text`; on failure the message is "<what>: invalid JSON at line L,
// column C: <reason>". `what` names the source, e.g. "context store '/p'".
Result<boost::json::value> parse_json(std::string_view text, std::string_view what);

// Two-space indented JSON followed by a newline, keys in insertion order.
std::string to_pretty_json(const boost::json::value& value);

// Compact JSON on one line followed by a newline.
std::string to_compact_json(const boost::json::value& value);

// The string at `key`, or an error "<what>: field '<key>' must be a string"
// (missing fields are an error too unless `fallback` is given).
Result<std::string> get_string(const boost::json::object& object, std::string_view key,
                               std::string_view what);
std::string get_string_or(const boost::json::object& object, std::string_view key,
                          std::string_view fallback);

}  // namespace envd::util
