#include "util/json.hpp"

#include "util/text.hpp"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

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

// A string as JSON text. Boost.JSON escapes the C0 controls only; DEL and the
// C1 controls (U+0080..U+009F, 0xC2 0x80..0x9F in UTF-8, where 0xC2 is
// always a lead byte) are escaped too (\u007f, \u009b). The value is the
// same to any JSON reader, and what envd prints (a context's fields, a
// daemon's answer) cannot drive a terminal: 0x9B is an 8-bit CSI.
//
// Bytes that are not UTF-8 (a file name in another encoding) would make the
// output invalid JSON, and a lone 0x9B is a CSI too: each becomes U+FFFD, as
// Go's encoding/json writes them.
void append_string(std::string& out, std::string_view text) {
  std::string valid;
  if (!sdk::is_utf8(text)) {
    for (std::size_t i = 0; i < text.size();) {
      const std::size_t n = sdk::text_detail::utf8_length(text, i);
      if (n == 0) {
        valid += "\xef\xbf\xbd";
        ++i;
      } else {
        valid.append(text.substr(i, n));
        i += n;
      }
    }
    text = valid;
  }
  const std::string serialized = json::serialize(json::string_view(text.data(), text.size()));
  for (std::size_t i = 0; i < serialized.size(); ++i) {
    const auto c = static_cast<unsigned char>(serialized[i]);
    const auto next = i + 1 < serialized.size() ? static_cast<unsigned char>(serialized[i + 1]) : 0;
    if (c == 0x7f) {
      out += "\\u007f";
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      constexpr std::string_view kHex = "0123456789abcdef";
      out += "\\u00";
      out += kHex[next >> 4];
      out += kHex[next & 0xf];
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
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
        append_string(out, member.key());
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
    case json::kind::string:
      append_string(out, v.get_string());
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

bool has_double(const json::value& value) {
  switch (value.kind()) {
    case json::kind::double_:
      return true;
    case json::kind::array:
      return std::any_of(value.get_array().begin(), value.get_array().end(), has_double);
    case json::kind::object:
      return std::any_of(value.get_object().begin(), value.get_object().end(),
                         [](const json::key_value_pair& m) { return has_double(m.value()); });
    default:
      return false;
  }
}

// The value of a JSON number's text as sign, significant digits (no leading
// or trailing zero) and the power of ten that puts the point before the first
// of them: "-120.50e1" is {true, "1205", 4}. Zero has no digits.
struct Decimal {
  bool negative = false;
  std::string digits;
  std::int64_t exponent = 0;
  bool operator==(const Decimal&) const = default;
};

Decimal decimal_of(std::string_view text) {
  Decimal d;
  std::size_t i = 0;
  if (i < text.size() && text[i] == '-') {
    d.negative = true;
    ++i;
  }
  std::int64_t point = 0;  // digits before the decimal point
  bool before_point = true;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      before_point = false;
      continue;
    }
    if (c < '0' || c > '9') break;
    if (d.digits.empty() && c == '0') {
      if (!before_point) --point;  // a leading zero after the point
      continue;
    }
    d.digits += c;
    if (before_point) ++point;
  }
  std::int64_t exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool minus = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) minus = text[i++] == '-';
    for (; i < text.size(); ++i) {
      // Saturates far beyond any double's range: such a number is already
      // infinity or zero, and told apart by its digits.
      if (exponent < 1'000'000'000) exponent = exponent * 10 + (text[i] - '0');
    }
    if (minus) exponent = -exponent;
  }
  while (!d.digits.empty() && d.digits.back() == '0') d.digits.pop_back();
  if (d.digits.empty()) return Decimal{d.negative, "", 0};
  d.exponent = point + exponent;
  return d;
}

// basic_parser's handler that stops at the first double whose text a write
// would change; integers are kept exactly by Boost.JSON and pass.
class InexactNumberHandler {
 public:
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);

  std::optional<InexactNumber> found;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) { return true; }
  bool on_object_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_key_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_key(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_string_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_number_part(json::string_view part, boost::system::error_code&) {
    number_.append(part.data(), part.size());
    return true;
  }
  bool on_int64(std::int64_t, json::string_view, boost::system::error_code&) {
    number_.clear();
    return true;
  }
  bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code&) {
    number_.clear();
    return true;
  }
  bool on_double(double d, json::string_view last, boost::system::error_code& ec) {
    number_.append(last.data(), last.size());
    std::string rewritten;
    append_double(rewritten, d);
    if (!(decimal_of(number_) == decimal_of(rewritten))) {
      found = InexactNumber{number_, rewritten};
      ec = json::error::syntax;  // stops the parse; the caller words the message
      return false;
    }
    number_.clear();
    return true;
  }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }

 private:
  std::string number_;
};

}  // namespace

std::optional<InexactNumber> first_inexact_number(std::string_view text, const json::value& value) {
  if (!has_double(value)) return std::nullopt;
  json::basic_parser<InexactNumberHandler> parser{json::parse_options{}};
  boost::system::error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  return parser.handler().found;
}

std::string inexact_number_reason(const InexactNumber& number) {
  return "the number " + printable(number.written, 64) +
         " cannot be kept exactly (a write would make it " + number.rewritten +
         "); quote it as a string";
}

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

namespace {

using error_code = boost::system::error_code;

// basic_parser's handler that finds a key repeated within one object, which
// the tree would settle silently (one of the two values dropped).
class RepeatedKeyHandler {
 public:
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);

  std::string repeated;  // the first key found twice, if any

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    keys_.pop_back();
    return true;
  }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_key_part(json::string_view part, std::size_t, error_code&) {
    pending_.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view last, std::size_t, error_code& ec) {
    pending_.append(last.data(), last.size());
    if (!keys_.back().insert(pending_).second) {
      repeated = pending_;
      ec = json::error::syntax;  // stops the parse; the message is ours
      return false;
    }
    pending_.clear();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, error_code&) { return true; }
  bool on_double(double, json::string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::string pending_;
};

}  // namespace

std::string first_repeated_key(std::string_view text) {
  json::basic_parser<RepeatedKeyHandler> parser{json::parse_options{}};
  error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  return parser.handler().repeated;
}

}  // namespace envd::util
