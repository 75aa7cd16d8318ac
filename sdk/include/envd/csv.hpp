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

// Splits `text` into its fields. A field that starts with '"' is quoted: it
// ends at the next lone '"', and "" inside it is one '"'; a '"' anywhere else
// is an ordinary character. Fails with Errc::invalid_argument, naming `what`
// ("--output"), on a line break outside quotes or an unterminated quote.
inline Result<std::vector<std::string>> split_csv_record(std::string_view text,
                                                         std::string_view what) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  bool field_started_quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"' && field.empty() && !field_started_quoted) {
      quoted = true;
      field_started_quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
      field_started_quoted = false;
    } else if (c == '\n' || c == '\r') {
      return Error(Errc::invalid_argument,
                   std::string(what) + " takes one CSV record, not several lines");
    } else {
      field += c;
    }
  }
  if (quoted) {
    return Error(Errc::invalid_argument, "invalid " + std::string(what) + " '" +
                                             printable(text, 300) + "': unterminated quote");
  }
  fields.push_back(std::move(field));
  return fields;
}

// `field` as one field of a record split_csv_record reads back unchanged:
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
