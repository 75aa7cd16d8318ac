// Private to libenvd-sdk (not installed). Base64 (RFC 4648) in both alphabets: the standard one
// ("+/", used by "auth" entries of Docker's config.json) and the URL-safe one ("-_", used by the
// Engine API's X-Registry-Auth header). Encoding always pads with '='.
#pragma once

#include <string>
#include <string_view>

#include "envd/result.hpp"

namespace envd::sdk {

enum class Base64Alphabet { standard, url };

// Encodes `data`, padded to a multiple of four characters.
std::string base64_encode(std::string_view data,
                          Base64Alphabet alphabet = Base64Alphabet::standard);

// Decodes `text` written in either alphabet, with or without '=' padding
// (Docker writes both). Errc::invalid_argument "invalid base64: ..." for any
// other character, data after padding, or a length no encoder produces.
Result<std::string> base64_decode(std::string_view text);

}  // namespace envd::sdk
