// .dockerignore patterns against paths: patterns, a "\n--\n" line, paths.
#include "buildkit/patterns.hpp"
#include "fuzz_input.hpp"

namespace bk = envd::buildkit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [patterns, paths] = envd::fuzz::split_once(envd::fuzz::as_text(data, size));
  auto matcher = bk::PatternMatcher::create(envd::fuzz::lines(patterns));
  if (!matcher) {
    envd::fuzz::require_clean_message(matcher.error().message());
    return 0;
  }
  for (const auto& path : envd::fuzz::lines(paths)) {
    std::string clean = bk::clean_relative_path(path);
    envd::fuzz::require(clean.empty() || clean.front() != '/', "a cleaned path is absolute");
    envd::fuzz::require(
        clean != ".." && clean.rfind("../", 0) != 0 && clean.find("/../") == std::string::npos,
        "a cleaned path climbs out of the context");
    (void)matcher->matches(path);
    (void)matcher->may_match_below(path);
  }
  return 0;
}
