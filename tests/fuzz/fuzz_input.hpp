// Splitting one fuzz input into the pieces a target needs, the same way under
// libFuzzer and in replay, so a saved input reproduces exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace envd::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The input cut at each '\n' (the last piece may be empty).
inline std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      out.emplace_back(text.substr(start));
      return out;
    }
    out.emplace_back(text.substr(start, nl - start));
    start = nl + 1;
  }
}

// The input cut at the first "\n--\n": what comes before and after it.
inline std::pair<std::string_view, std::string_view> split_once(std::string_view text) {
  constexpr std::string_view kSeparator = "\n--\n";
  size_t at = text.find(kSeparator);
  if (at == std::string_view::npos) return {text, {}};
  return {text.substr(0, at), text.substr(at + kSeparator.size())};
}

}  // namespace envd::fuzz

#include <cstdio>
#include <cstdlib>

namespace envd::fuzz {

// What every message shown to a user must be: one line, with no control
// character or escape sequence taken raw from the input. A message that
// breaks it is a finding: the fuzzer stops there with the message.
inline void require_clean_message(const std::string& message) {
  for (unsigned char c : message) {
    if (c < 0x20 || c == 0x7f) {
      std::fprintf(stderr, "fuzz: a message holds control character 0x%02x: %s\n", c,
                   message.c_str());
      std::abort();
    }
  }
}

inline void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz: property broken: %s\n", what);
    std::abort();
  }
}

}  // namespace envd::fuzz
