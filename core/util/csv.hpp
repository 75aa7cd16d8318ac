// One CSV record as Go's encoding/csv reads it (RFC 4180 quoting), the grammar
// of docker's and buildctl's key=value flags (--output, --secret).
//
// Header-only so it needs no change to the envd_util target.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "envd/result.hpp"
#include "util/text.hpp"

namespace envd::util {

// Splits `text` into its fields. A field that starts with '"' is quoted: it
// ends at the next lone '"', and "" inside it is one '"'. Fails with
// Errc::invalid_argument, naming `flag` ("--output"), on a line break outside
// quotes or an unterminated quote.
inline Result<std::vector<std::string>> split_csv_record(std::string_view text,
                                                         std::string_view flag) {
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
                   std::string(flag) + " takes one CSV record, not several lines");
    } else {
      field += c;
    }
  }
  if (quoted) {
    return Error(Errc::invalid_argument, "invalid " + std::string(flag) + " '" +
                                             printable(text, 300) + "': unterminated quote");
  }
  fields.push_back(std::move(field));
  return fields;
}

}  // namespace envd::util
