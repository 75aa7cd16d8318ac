#include "util/json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

namespace envd::util {
namespace {

namespace json = boost::json;

// A double as the shortest text that reads back as it: "1.5", "0", "1e-10".
// Boost.JSON writes "1.5E0" and "0E0", valid JSON but odd in what a script or
// a person reads (a CPU share, a probe's round trip).
void append_double(std::string& out, double d) {
  std::array<char, 32> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), d);
  if (ec != std::errc()) {
    out += json::serialize(json::value(d));
    return;
  }
  out.append(buffer.data(), end);
}

// `indent` < 0: compact, no whitespace at all.
void pretty(std::string& out, const json::value& v, int indent) {
  auto newline = [&](int level) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(level) * 2, ' ');
  };
  const int inner = indent < 0 ? indent : indent + 1;
  switch (v.kind()) {
    case json::kind::object: {
      const auto& obj = v.get_object();
      if (obj.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (const auto& member : obj) {
        if (!first) out += ',';
        first = false;
        newline(indent + 1);
        out += json::serialize(json::string(member.key()));
        out += indent < 0 ? ":" : ": ";
        pretty(out, member.value(), inner);
      }
      newline(indent);
      out += '}';
      return;
    }
    case json::kind::array: {
      const auto& arr = v.get_array();
      if (arr.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (const auto& element : arr) {
        if (!first) out += ',';
        first = false;
        newline(indent + 1);
        pretty(out, element, inner);
      }
      newline(indent);
      out += ']';
      return;
    }
    case json::kind::double_:
      append_double(out, v.get_double());
      return;
    default:
      out += json::serialize(v);
  }
}

}  // namespace

namespace {

bool has_non_finite(const json::value& value) {
  switch (value.kind()) {
    case json::kind::double_:
      return !std::isfinite(value.get_double());
    case json::kind::array:
      for (const auto& item : value.get_array()) {
        if (has_non_finite(item)) return true;
      }
      return false;
    case json::kind::object:
      for (const auto& member : value.get_object()) {
        if (has_non_finite(member.value())) return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

Result<json::value> parse_json(std::string_view text, std::string_view what) {
  // One arena per document: no malloc per element, and no walk to free each
  // one (a store of 1,000 contexts spent a quarter of `context ls` in both).
  // The value and every copy of its parts share the arena, so it lives as
  // long as any of them.
  json::parser parser;
  parser.reset(json::make_shared_resource<json::monotonic_resource>());
  boost::system::error_code ec;
  // write() needs one complete JSON text: incomplete input or trailing characters fail.
  size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) {
    json::value value = parser.release();
    // 1e400 parses as infinity, which no JSON writer can give back: a file
    // envd rewrites would become one it cannot read.
    if (has_non_finite(value)) {
      return Error(Errc::invalid_argument,
                   std::string(what) +
                       ": invalid JSON: a number is too large to keep (beyond "
                       "1.8e308)");
    }
    return value;
  }
  // Locate the failure for the message: count lines up to the parser's stop point.
  size_t stop = std::min(consumed, text.size());
  size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + stop, '\n'));
  size_t line_start = text.rfind('\n', stop == 0 ? 0 : stop - 1);
  size_t column = (line_start == std::string_view::npos) ? stop + 1 : stop - line_start;
  return Error(Errc::invalid_argument, std::string(what) + ": invalid JSON at line " +
                                           std::to_string(line) + ", column " +
                                           std::to_string(column) + ": " + ec.message());
}

std::string to_pretty_json(const json::value& value) {
  std::string out;
  pretty(out, value, 0);
  out += '\n';
  return out;
}

std::string to_compact_json(const json::value& value) {
  std::string out;
  pretty(out, value, -1);
  out += '\n';
  return out;
}

Result<std::string> get_string(const json::object& object, std::string_view key,
                               std::string_view what) {
  const json::value* v = object.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    return Error(Errc::invalid_argument,
                 std::string(what) + ": field '" + std::string(key) + "' must be a string");
  }
  return std::string(v->get_string());
}

std::string get_string_or(const json::object& object, std::string_view key,
                          std::string_view fallback) {
  const json::value* v = object.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::string(fallback);
  return std::string(v->get_string());
}

}  // namespace envd::util
