// Reading the request metadata BuildKit sends with session calls.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>
#include <vector>

namespace envd::buildkit {

// Every value of metadata `key` (lowercase), in order. When `<key>-encoded`
// is "1" the values are URL query-escaped ('+' for space, %XX) and are
// decoded here; a malformed escape is kept as is.
std::vector<std::string> metadata_values(const grpc::ServerContext& context, std::string_view key);

// Decodes Go's url.QueryEscape form: '+' is a space, %XX a byte. Returns
// `text` unchanged if an escape is malformed.
std::string query_unescape(std::string_view text);

}  // namespace envd::buildkit
