// The core's one set of JSON helpers (Boost.JSON): parsing with a located error
// message, pretty printing, and typed field access for hand-written schemas.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "envd/result.hpp"

namespace envd::util {

// Parses `text`; on failure the message is "<what>: invalid JSON at line L,
// column C: <reason>". `what` names the source, e.g. "context store '/p'".
Result<boost::json::value> parse_json(std::string_view text, std::string_view what);

// A number of a JSON text that Boost.JSON reads as a double whose value a
// write gives back changed: an integer beyond 64 bits, more digits than a
// double holds, or a magnitude below its least. `written` is the number as
// the text has it, `rewritten` as a write would put it. A file envd rewrites
// (the context store) is refused with such a number rather than changed.
struct InexactNumber {
  std::string written;
  std::string rewritten;
};

// The first such number of `text`, which parsed as `value`; nullopt when
// every number would be written back as it is (the usual case costs one walk
// of `value`, and a second parse only when it holds a double).
std::optional<InexactNumber> first_inexact_number(std::string_view text,
                                                  const boost::json::value& value);

// "the number 123456789012345678901 cannot be kept exactly (a write would
// make it 123456789012345667584); quote it as a string".
std::string inexact_number_reason(const InexactNumber& number);

// The first key that `text` (well-formed JSON) repeats within one object, or
// "". boost::json keeps one of the two values silently; a file envd reads as
// a record (the context store, an archive's meta.json) is refused instead.
std::string first_repeated_key(std::string_view text);

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
