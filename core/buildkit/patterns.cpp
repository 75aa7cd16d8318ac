#include "buildkit/patterns.hpp"

#include <utility>

#include "envd/text.hpp"
#include "util/text.hpp"

namespace envd::buildkit {

namespace {

std::string_view trim(std::string_view text) {
  const char* space = " \t\r\n\v\f";
  auto begin = text.find_first_not_of(space);
  if (begin == std::string_view::npos) return {};
  auto end = text.find_last_not_of(space);
  return text.substr(begin, end - begin + 1);
}

// Each parent of a cleaned path, shortest first: "a/b/c" gives "a", "a/b".
std::vector<std::string_view> parents_of(std::string_view path) {
  std::vector<std::string_view> out;
  for (std::size_t i = path.find('/'); i != std::string_view::npos; i = path.find('/', i + 1)) {
    out.push_back(path.substr(0, i));
  }
  return out;
}

std::vector<std::string_view> split_segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty()) return out;
  std::size_t start = 0;
  for (;;) {
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

// The code point of the well-formed UTF-8 sequence of `n` bytes at text[i].
char32_t decode_utf8(std::string_view text, std::size_t i, std::size_t n) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  if (n == 1) return byte(0);
  char32_t cp = byte(0) & (0x7fU >> n);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6U) | (byte(k) & 0x3fU);
  return cp;
}

// One character of a path, as Go's regexp (which moby's patternmatcher
// compiles patterns to) reads it: a UTF-8 sequence, or one byte that is not
// one (U+FFFD). Its length goes to `length`.
char32_t path_char(std::string_view path, std::size_t i, std::size_t& length) {
  std::size_t n = sdk::text_detail::utf8_length(path, i);
  length = n == 0 ? 1 : n;
  return n == 0 ? char32_t{0xfffd} : decode_utf8(path, i, n);
}

}  // namespace

std::string clean_relative_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    auto part = path.substr(start, slash - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = slash + 1;
  }
  std::string out;
  for (auto part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

namespace {

// Whether Go's filepath.Clean of `pattern` is "." or "/", or climbs above
// where it starts ("..", "../x"): a pattern for no path of a walk.
bool names_root_or_above(std::string_view pattern) {
  const bool rooted = !pattern.empty() && pattern.front() == '/';
  int depth = 0;
  std::size_t start = 0;
  while (start <= pattern.size()) {
    auto slash = pattern.find('/', start);
    if (slash == std::string_view::npos) slash = pattern.size();
    auto part = pattern.substr(start, slash - start);
    if (part == "..") {
      if (depth > 0) {
        --depth;
      } else if (!rooted) {
        return true;
      }
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    start = slash + 1;
  }
  return depth == 0;
}

}  // namespace

Result<PatternMatcher> PatternMatcher::create(const std::vector<std::string>& patterns) {
  PatternMatcher matcher;
  for (const auto& original : patterns) {
    std::string_view text = trim(original);
    if (text.empty()) continue;
    Rule rule;
    if (text.front() == '!') {
      rule.exception = true;
      text = trim(text.substr(1));
      if (text.empty()) {
        return Error(Errc::invalid_argument, "pattern '" + util::printable(original, 80) +
                                                 "' is invalid: '!' needs a pattern after it");
      }
    }
    rule.matches_nothing = names_root_or_above(text);
    rule.text = clean_relative_path(text);
    auto invalid = [&](const std::string& why) {
      std::string message = "pattern '";
      message += util::printable(original, 80);
      message += "' is invalid: ";
      message += why;
      return Error(Errc::invalid_argument, std::move(message));
    };
    const std::string& p = rule.text;
    std::vector<Token> segment;
    for (std::size_t i = 0; i < p.size(); ++i) {
      Token token;
      char c = p[i];
      if (c == '*') {
        if (i + 1 < p.size() && p[i + 1] == '*') {
          ++i;
          if (i + 1 < p.size() && p[i + 1] == '/') ++i;
          token.kind = i + 1 == p.size() ? Token::globstar_all : Token::globstar_dir;
        } else {
          token.kind = Token::star;
        }
      } else if (c == '?') {
        token.kind = Token::any_char;
      } else if (c == '[') {
        // Go's filepath.Match grammar, against which moby's patternmatcher
        // checks every pattern: '^' (only) negates; then one or more ranges,
        // each a character or lo-hi, where '-' and ']' are only taken
        // escaped ('\\'). "[!x]" is a class of '!' and 'x', as in Docker.
        token.kind = Token::class_set;
        std::size_t j = i + 1;
        if (j < p.size() && p[j] == '^') {
          token.negated = true;
          ++j;
        }
        std::string why;
        auto one = [&](char32_t& out) {
          if (j >= p.size()) {
            why = "unterminated character class";
          } else if (p[j] == '-' || p[j] == ']') {
            why = std::string("'") + p[j] + "' in a character class must be escaped with '\\'";
          } else {
            if (p[j] == '\\' && ++j >= p.size()) {
              why = "unterminated character class";
              return false;
            }
            std::size_t n = sdk::text_detail::utf8_length(p, j);
            if (n == 0) {
              why = "a character class holds bytes that are not UTF-8";
              return false;
            }
            out = decode_utf8(p, j, n);
            j += n;
            return true;
          }
          return false;
        };
        for (;;) {
          if (j < p.size() && p[j] == ']' && !token.ranges.empty()) break;
          if (j < p.size() && p[j] == ']') return invalid("empty character class");
          char32_t lo = 0;
          if (!one(lo)) return invalid(why);
          char32_t hi = lo;
          if (j < p.size() && p[j] == '-') {
            ++j;
            if (!one(hi)) return invalid(why);
            if (hi < lo) return invalid("character class range is reversed");
          }
          token.ranges.emplace_back(lo, hi);
        }
        i = j;
      } else if (c == '\\') {
        if (i + 1 >= p.size()) return invalid("trailing backslash");
        token.ch = p[++i];
      } else {
        token.ch = c;
      }
      rule.tokens.push_back(token);
      if (token.kind == Token::literal && token.ch == '/') {
        rule.segments.push_back(std::move(segment));
        segment.clear();
      } else {
        segment.push_back(token);
      }
    }
    rule.segments.push_back(std::move(segment));
    matcher.has_exceptions_ = matcher.has_exceptions_ || rule.exception;
    matcher.rules_.push_back(std::move(rule));
  }
  return matcher;
}

bool PatternMatcher::match_tokens(const std::vector<Token>& tokens, std::string_view path) {
  std::vector<bool> failed((tokens.size() + 1) * (path.size() + 1), false);
  return match_from(tokens, 0, path, 0, failed);
}

// `failed` remembers the (token, position) starts already known not to match:
// each is tried at most once, whatever the number of stars.
bool PatternMatcher::match_from(const std::vector<Token>& tokens, std::size_t ti,
                                std::string_view path, std::size_t pi, std::vector<bool>& failed) {
  const std::size_t start = ti * (path.size() + 1) + pi;
  if (failed[start]) return false;
  bool matched = match_here(tokens, ti, path, pi, failed);
  if (!matched) failed[start] = true;
  return matched;
}

bool PatternMatcher::match_here(const std::vector<Token>& tokens, std::size_t ti,
                                std::string_view path, std::size_t pi, std::vector<bool>& failed) {
  while (ti < tokens.size()) {
    const Token& token = tokens[ti];
    std::size_t step = 1;  // the path's bytes the token took
    switch (token.kind) {
      case Token::globstar_all:
        return true;
      case Token::globstar_dir:
        // Zero segments, or any text up to and including a '/'.
        if (match_from(tokens, ti + 1, path, pi, failed)) return true;
        for (std::size_t j = pi; j < path.size(); ++j) {
          if (path[j] == '/' && match_from(tokens, ti + 1, path, j + 1, failed)) return true;
        }
        return false;
      case Token::star:
        for (std::size_t j = pi;; ++j) {
          if (match_from(tokens, ti + 1, path, j, failed)) return true;
          if (j >= path.size() || path[j] == '/') return false;
        }
      case Token::any_char:
        if (pi >= path.size() || path[pi] == '/') return false;
        path_char(path, pi, step);
        break;
      case Token::class_set: {
        // Never '/', as in filepath.Match, which the daemon's COPY applies.
        if (pi >= path.size() || path[pi] == '/') return false;
        char32_t c = path_char(path, pi, step);
        bool in = false;
        for (auto [lo, hi] : token.ranges) in = in || (c >= lo && c <= hi);
        if (in == token.negated) return false;
        break;
      }
      case Token::literal:
        if (pi >= path.size() || path[pi] != token.ch) return false;
        break;
    }
    ++ti;
    pi += step;
  }
  return pi == path.size();
}

bool PatternMatcher::rule_matches(const Rule& rule, std::string_view path) {
  if (rule.matches_nothing) return false;
  return match_tokens(rule.tokens, path);
}

bool PatternMatcher::matches(std::string_view raw_path) const {
  std::string path = clean_relative_path(raw_path);
  auto parents = parents_of(path);
  bool matched = false;
  for (const auto& rule : rules_) {
    // A rule that cannot change the outcome need not be tried.
    if (rule.exception != matched) continue;
    bool hit = rule_matches(rule, path);
    for (std::size_t i = 0; !hit && i < parents.size(); ++i) hit = rule_matches(rule, parents[i]);
    if (hit) matched = !rule.exception;
  }
  return matched;
}

bool PatternMatcher::rule_may_match_below(const Rule& rule, std::string_view dir) {
  auto parts = split_segments(dir);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    // A pattern as long as a parent of the path matches that parent at most,
    // which still covers everything below it.
    if (i >= rule.segments.size()) return true;
    for (const auto& token : rule.segments[i]) {
      if (token.kind == Token::globstar_dir || token.kind == Token::globstar_all) return true;
    }
    if (!match_tokens(rule.segments[i], parts[i])) return false;
  }
  return true;
}

bool PatternMatcher::any_may_match_below(std::string_view raw_dir, bool exception) const {
  std::string dir = clean_relative_path(raw_dir);
  for (const auto& rule : rules_) {
    if (rule.exception == exception && !rule.matches_nothing && rule_may_match_below(rule, dir)) {
      return true;
    }
  }
  return false;
}

bool PatternMatcher::may_match_below(std::string_view dir) const {
  return any_may_match_below(dir, false);
}

bool PatternMatcher::may_reinclude_below(std::string_view dir) const {
  return any_may_match_below(dir, true);
}

Status check_ignore_text(std::string_view text) {
  constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
  if (text.substr(0, kByteOrderMark.size()) == kByteOrderMark) {
    text.remove_prefix(kByteOrderMark.size());
  }
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    // The comment test comes before trimming: " #x" is a pattern, as there.
    if (!line.empty() && line.front() == '#') continue;
    if (auto compiled = PatternMatcher::create({std::string(line)}); !compiled) {
      return compiled.error().wrap("line " + std::to_string(number));
    }
  }
  return {};
}

}  // namespace envd::buildkit
