// Docker's .dockerignore pattern language, as BuildKit applies it to the
// include-patterns and exclude-patterns of a FileSync request.
//
// Syntax of one pattern: '*' matches any run of non-'/' characters, '?' one
// non-'/' character (a UTF-8 sequence), '[...]' a character class ('[^...]'
// negated, ranges 'a-z' of code points, '-' and ']' escaped; '!' is a plain
// character there, as in Go's filepath.Match), '\' escapes the next
// character, and '**' matches any number of whole path segments ("**/x",
// "a/**/x", "a/**"). A leading '!' makes the pattern an exception that
// re-includes what earlier patterns matched. Patterns and paths are cleaned
// first: surrounding whitespace, a leading '/' and "./" are removed, "." and
// ".." parts are resolved.
//
// Matching follows Docker: the rules are tried in order and the last rule that
// matches the path, or any of its parent directories, decides. So "dir" (or
// "dir/") matches everything below dir, and a later "!dir/keep" re-includes
// dir/keep.
//
// Thread-safety: a PatternMatcher is immutable after create(); it may be used
// from several threads at once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "envd/result.hpp"

namespace envd::buildkit {

// Lexically cleans a relative '/'-separated path: drops leading '/' and "./",
// empty and "." parts, resolves ".." (never above the root) and a trailing '/'.
// The root itself is "".
std::string clean_relative_path(std::string_view path);

// Checks the text of an ignore file (`.dockerignore`, `Dockerfile.dockerignore`)
// line by line, as the Dockerfile frontend reads it and moby's patternmatcher
// then compiles it: a UTF-8 byte-order mark is dropped from the first line, a
// line starting with '#' is a comment, blank lines are skipped, the rest is a
// pattern. Fails with Errc::invalid_argument naming the first bad line
// ("line 3: pattern '[a-]' is invalid: ..."). The frontend does not check the
// patterns itself: the session (this client) meets them only once the build
// has started, without the file's name.
Status check_ignore_text(std::string_view text);

class PatternMatcher {
 public:
  // Compiles `patterns` in order. Empty (after trimming) patterns are skipped.
  // Fails with Errc::invalid_argument for a lone "!" or a class Go's
  // filepath.Match refuses, as Docker does ("pattern '[a' is invalid:
  // unterminated character class"; "[a-]", "[]a]", "[]").
  static Result<PatternMatcher> create(const std::vector<std::string>& patterns);

  PatternMatcher() = default;

  // True when there are no rules (nothing matches).
  bool empty() const { return rules_.empty(); }

  // True if any rule is an exception ('!').
  bool has_exceptions() const { return has_exceptions_; }

  // Whether the last rule matching `path` or one of its parents is a plain
  // (non-'!') rule. `path` is cleaned first.
  bool matches(std::string_view path) const;

  // Whether some path strictly below directory `dir` could be matched by a
  // non-exception rule (for include patterns: is it worth walking into dir).
  // Conservative: may say true when nothing below matches, never false when
  // something does.
  bool may_match_below(std::string_view dir) const;

  // Whether some path strictly below directory `dir` could be matched by an
  // exception rule (for exclude patterns: must an excluded dir still be walked
  // because a child may be re-included). Conservative like may_match_below.
  bool may_reinclude_below(std::string_view dir) const;

 private:
  struct Token {
    enum Kind { literal, any_char, star, class_set, globstar_dir, globstar_all };
    Kind kind = literal;
    char ch = 0;
    bool negated = false;
    std::vector<std::pair<char32_t, char32_t>> ranges;
  };
  struct Rule {
    std::string text;
    bool exception = false;
    // "." and "/" (and what climbs above the root, "../x"): no walked path
    // is ever the root or above it, so moby's patternmatcher, whose patterns
    // these are, matches nothing with them.
    bool matches_nothing = false;
    std::vector<Token> tokens;
    std::vector<std::vector<Token>> segments;  // tokens split at '/', for prefix checks
  };

  // Whether `tokens` match all of `path`. Linear in the pair (token, path
  // position) count: a hostile .dockerignore (hundreds of '*') cannot make it
  // backtrack exponentially.
  static bool match_tokens(const std::vector<Token>& tokens, std::string_view path);
  static bool match_from(const std::vector<Token>& tokens, std::size_t ti, std::string_view path,
                         std::size_t pi, std::vector<bool>& failed);
  static bool match_here(const std::vector<Token>& tokens, std::size_t ti, std::string_view path,
                         std::size_t pi, std::vector<bool>& failed);
  static bool rule_matches(const Rule& rule, std::string_view path);
  static bool rule_may_match_below(const Rule& rule, std::string_view dir);
  bool any_may_match_below(std::string_view dir, bool exception) const;

  std::vector<Rule> rules_;
  bool has_exceptions_ = false;
};

}  // namespace envd::buildkit
