// One CSV record as Go's encoding/csv reads it (RFC 4180 quoting): the
// grammar of docker's and buildctl's key=value flags (--output, --secret) and
// of a driver's list options (`env="NO_PROXY=a,b",FOO=1`), so a field can hold
// a comma when it is quoted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "envd/result.hpp"
#include "envd/text.hpp"

namespace envd::sdk {

// How a '"' that does not open a field is read.
enum class CsvQuotes {
  strict,  // refused, as Go's encoding/csv does by default (docker, buildctl)
  lazy,    // an ordinary character (a driver's list options: `FOO="x"`)
};

// Splits `text` into its fields. A field that starts with '"' is quoted: it
// ends at the next lone '"', and "" inside it is one '"'. Strict, a ',' or
// the end must follow that '"', and a '"' inside a field that is not quoted
// is refused; lazy, both are ordinary characters. Fails with
// Errc::invalid_argument, naming `what` ("--output"), on a line break
// outside quotes, an unterminated quote, or (strict) a stray '"'.
inline Result<std::vector<std::string>> split_csv_record(std::string_view text,
                                                         std::string_view what,
                                                         CsvQuotes quotes = CsvQuotes::strict) {
  auto invalid = [&](std::string_view reason) {
    return Error(Errc::invalid_argument, "invalid " + std::string(what) + " '" +
                                             printable(text, 300) + "': " + std::string(reason));
  };
  const bool strict = quotes == CsvQuotes::strict;
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;   // inside a quoted field
  bool closed = false;   // after a quoted field's closing quote
  bool started = false;  // the field has begun (a character or an opening quote)
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
        closed = true;
      }
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
      closed = started = false;
    } else if (c == '\n' || c == '\r') {
      return Error(Errc::invalid_argument,
                   std::string(what) + " takes one CSV record, not several lines");
    } else if (closed && strict) {
      return invalid(
          "a character after the quote that ends a quoted field (write a '\"' inside "
          "it as '\"\"')");
    } else if (c == '"' && !started) {
      quoted = started = true;
    } else if (c == '"' && strict) {
      return invalid(
          "a '\"' inside a field that is not quoted (quote the whole field, "
          "\"key=value\", and write a '\"' inside it as '\"\"')");
    } else {
      field += c;
      started = true;
    }
  }
  if (quoted) return invalid("unterminated quote");
  fields.push_back(std::move(field));
  return fields;
}

// `field` as one field of a record split_csv_record reads back unchanged
// with lazy quotes:
// quoted ("" for each '"') when it holds a comma or a line break or starts
// with a quote, as is otherwise.
inline std::string csv_field(std::string_view field) {
  bool needs_quotes = field.find_first_of(",\r\n") != std::string_view::npos ||
                      (!field.empty() && field.front() == '"');
  if (!needs_quotes) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace envd::sdk
