#include "buildkit/request_metadata.hpp"

namespace envd::buildkit {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string query_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= text.size()) return std::string(text);
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::string(text);
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::string> metadata_values(const grpc::ServerContext& context, std::string_view key) {
  const auto& metadata = context.client_metadata();
  auto lookup = [&](const std::string& name) {
    std::vector<std::string> values;
    auto [begin, end] = metadata.equal_range(grpc::string_ref(name));
    for (auto it = begin; it != end; ++it)
      values.emplace_back(it->second.data(), it->second.size());
    return values;
  };
  auto values = lookup(std::string(key));
  auto encoded = lookup(std::string(key) + "-encoded");
  if (!encoded.empty() && encoded.front() == "1") {
    for (auto& value : values) value = query_unescape(value);
  }
  return values;
}

}  // namespace envd::buildkit
