#include "buildkit/patterns.hpp"

#include <gtest/gtest.h>

namespace envd::buildkit {
namespace {

PatternMatcher make(const std::vector<std::string>& patterns) {
  auto matcher = PatternMatcher::create(patterns);
  EXPECT_TRUE(matcher.ok()) << (matcher ? "" : matcher.error().message());
  return matcher ? std::move(*matcher) : PatternMatcher();
}

TEST(CleanRelativePath, StripsAndResolves) {
  EXPECT_EQ(clean_relative_path("/a/b"), "a/b");
  EXPECT_EQ(clean_relative_path("./a/./b/"), "a/b");
  EXPECT_EQ(clean_relative_path("a//b"), "a/b");
  EXPECT_EQ(clean_relative_path("a/../b"), "b");
  EXPECT_EQ(clean_relative_path("../../x"), "x");
  EXPECT_EQ(clean_relative_path("."), "");
  EXPECT_EQ(clean_relative_path("/"), "");
}

TEST(PatternMatcher, EmptyMatchesNothing) {
  auto m = make({});
  EXPECT_TRUE(m.empty());
  EXPECT_FALSE(m.matches("a"));
  auto blank = make({"", "  "});
  EXPECT_TRUE(blank.empty());
}

// As in moby's patternmatcher (BuildKit, docker build): "." and "/" name
// the root, and "../x" what is above it, which no walked path is: they match
// nothing, so `.` in a .dockerignore excludes nothing.
TEST(PatternMatcher, TheRootAndWhatIsAboveItMatchNothing) {
  for (const char* pattern : {".", "/", "./", "a/..", "..", "../x", "a/../../x", "!."}) {
    SCOPED_TRACE(pattern);
    auto m = make({pattern});
    EXPECT_FALSE(m.matches("a"));
    EXPECT_FALSE(m.matches("x"));
    EXPECT_FALSE(m.matches("dir/file"));
    EXPECT_FALSE(m.may_match_below("dir"));
    EXPECT_FALSE(m.may_reinclude_below("dir"));
  }
  auto then_keep = make({".", "!keep"});
  EXPECT_FALSE(then_keep.matches("other"));
  EXPECT_FALSE(then_keep.matches("keep"));
  // A leading '/' is dropped (BuildKit's .dockerignore reader drops it too),
  // and a ".." inside the pattern resolved.
  EXPECT_TRUE(make({"/x"}).matches("x"));
  EXPECT_TRUE(make({"a/../x"}).matches("x"));
}

TEST(PatternMatcher, StarDoesNotCrossSlash) {
  auto m = make({"*.md"});
  EXPECT_TRUE(m.matches("README.md"));
  EXPECT_TRUE(m.matches("a.md"));
  EXPECT_FALSE(m.matches("docs/a.md"));
  EXPECT_FALSE(m.matches("a.mdx"));
}

TEST(PatternMatcher, MarkdownWithReadmeException) {
  auto m = make({"*.md", "!README.md"});
  EXPECT_TRUE(m.matches("CHANGELOG.md"));
  EXPECT_FALSE(m.matches("README.md"));
  EXPECT_FALSE(m.matches("main.go"));
  EXPECT_TRUE(m.has_exceptions());
}

TEST(PatternMatcher, LastMatchingRuleWins) {
  auto m = make({"!README.md", "*.md"});
  EXPECT_TRUE(m.matches("README.md"));
  auto again = make({"*.md", "!README.md", "README.md"});
  EXPECT_TRUE(again.matches("README.md"));
}

TEST(PatternMatcher, DoubleStarAnyDepth) {
  auto m = make({"**/*.go"});
  EXPECT_TRUE(m.matches("main.go"));
  EXPECT_TRUE(m.matches("cmd/main.go"));
  EXPECT_TRUE(m.matches("a/b/c/x.go"));
  EXPECT_FALSE(m.matches("a/b/c/x.gox"));
  auto mid = make({"a/**/z"});
  EXPECT_TRUE(mid.matches("a/z"));
  EXPECT_TRUE(mid.matches("a/b/z"));
  EXPECT_TRUE(mid.matches("a/b/c/z"));
  EXPECT_FALSE(mid.matches("b/z"));
  auto all = make({"**"});
  EXPECT_TRUE(all.matches("x"));
  EXPECT_TRUE(all.matches("x/y"));
}

TEST(PatternMatcher, DirectoryPatternsCoverChildren) {
  for (const char* p : {"dir", "dir/", "/dir", "./dir"}) {
    auto m = make({p});
    EXPECT_TRUE(m.matches("dir")) << p;
    EXPECT_TRUE(m.matches("dir/a")) << p;
    EXPECT_TRUE(m.matches("dir/a/b")) << p;
    EXPECT_FALSE(m.matches("dirx")) << p;
    EXPECT_FALSE(m.matches("x/dir")) << p;
  }
  auto stars = make({"dir/**"});
  EXPECT_FALSE(stars.matches("dir"));
  EXPECT_TRUE(stars.matches("dir/a"));
  EXPECT_TRUE(stars.matches("dir/a/b"));
}

TEST(PatternMatcher, ExcludesGit) {
  auto m = make({".git"});
  EXPECT_TRUE(m.matches(".git"));
  EXPECT_TRUE(m.matches(".git/HEAD"));
  EXPECT_TRUE(m.matches(".git/objects/ab/cdef"));
  EXPECT_FALSE(m.matches(".gitignore"));
  EXPECT_FALSE(m.matches("sub/.git"));
}

TEST(PatternMatcher, ExceptionInsideExcludedDir) {
  auto m = make({"dir", "!dir/keep"});
  EXPECT_TRUE(m.matches("dir/other"));
  EXPECT_FALSE(m.matches("dir/keep"));
  EXPECT_FALSE(m.matches("dir/keep/deep"));
  EXPECT_TRUE(m.may_reinclude_below("dir"));
  EXPECT_FALSE(m.may_reinclude_below("other"));
  EXPECT_TRUE(m.may_reinclude_below("dir/keep"));
  EXPECT_FALSE(m.may_reinclude_below("dir/nope"));
}

TEST(PatternMatcher, ExcludeEverythingButGoFiles) {
  auto top = make({"*", "!*.go"});
  EXPECT_FALSE(top.matches("main.go"));
  EXPECT_TRUE(top.matches("README"));
  EXPECT_TRUE(top.matches("pkg/lib.go"));  // "*" matches the parent "pkg"
  EXPECT_FALSE(top.may_reinclude_below("pkg"));
  auto deep = make({"**", "!**/*.go"});
  EXPECT_FALSE(deep.matches("pkg/sub/lib.go"));
  EXPECT_TRUE(deep.matches("pkg/sub/lib.c"));
  EXPECT_TRUE(deep.matches("pkg"));
  EXPECT_TRUE(deep.may_reinclude_below("pkg/sub"));
}

TEST(PatternMatcher, QuestionMarkAndClasses) {
  auto m = make({"file?.txt", "[a-c]x", "[!0-9]y", "[^q]z", "\\*lit"});
  EXPECT_TRUE(m.matches("file1.txt"));
  EXPECT_FALSE(m.matches("file12.txt"));
  EXPECT_FALSE(m.matches("file/.txt"));
  EXPECT_TRUE(m.matches("bx"));
  EXPECT_FALSE(m.matches("dx"));
  // '!' is a plain character in a class, as in Go's filepath.Match and
  // Docker (only '^' negates): "[!0-9]" is '!' or a digit.
  EXPECT_FALSE(m.matches("ay"));
  EXPECT_TRUE(m.matches("5y"));
  EXPECT_TRUE(m.matches("!y"));
  EXPECT_TRUE(m.matches("az"));
  EXPECT_FALSE(m.matches("qz"));
  EXPECT_TRUE(m.matches("*lit"));
  EXPECT_FALSE(m.matches("xlit"));
}

// '?' and a class take one character, not one byte, as Go's regexp does in
// moby's patternmatcher: "caf?" is café (two bytes at the end); a byte that
// is not UTF-8 is one character too.
TEST(PatternMatcher, QuestionMarkAndClassesTakeOneUtf8Character) {
  auto m = make({"caf?", "[à-ö]x", "[^a]y"});
  EXPECT_TRUE(m.matches("caf\xc3\xa9"));
  EXPECT_TRUE(m.matches("caf\xff"));
  EXPECT_FALSE(
      m.matches("caf\xc3\xa9"
                "e"));
  EXPECT_TRUE(m.matches("\xc3\xa9x"));   // é is within à-ö
  EXPECT_FALSE(m.matches("\xc3\xb8x"));  // ø is not
  EXPECT_TRUE(m.matches("\xe2\x82\xacy"));
  EXPECT_FALSE(m.matches("ay"));
  EXPECT_FALSE(m.matches("/y"));
}

TEST(PatternMatcher, PathsAreCleaned) {
  auto m = make({"a/b"});
  EXPECT_TRUE(m.matches("/a/b"));
  EXPECT_TRUE(m.matches("./a/b"));
  EXPECT_TRUE(m.matches("a/./b/"));
}

TEST(PatternMatcher, MayMatchBelowForIncludes) {
  auto m = make({"src/*.go", "docs/**/*.md"});
  EXPECT_TRUE(m.may_match_below("src"));
  EXPECT_FALSE(m.may_match_below("test"));
  EXPECT_TRUE(m.may_match_below("docs"));
  EXPECT_TRUE(m.may_match_below("docs/a/b"));
  EXPECT_TRUE(m.may_match_below(""));
  // Matched parents cover everything below.
  auto dir = make({"lib"});
  EXPECT_TRUE(dir.may_match_below("lib/x/y"));
}

TEST(PatternMatcher, WildcardInMiddleSegment) {
  auto m = make({"*/tmp"});
  EXPECT_TRUE(m.matches("a/tmp"));
  EXPECT_TRUE(m.matches("a/tmp/x"));
  EXPECT_FALSE(m.matches("tmp"));
  EXPECT_FALSE(m.matches("a/b/tmp"));
}

TEST(PatternMatcher, InvalidPatterns) {
  EXPECT_FALSE(PatternMatcher::create({"!"}).ok());
  EXPECT_FALSE(PatternMatcher::create({"[abc"}).ok());
  EXPECT_FALSE(PatternMatcher::create({"abc\\"}).ok());
  EXPECT_FALSE(PatternMatcher::create({"[z-a]"}).ok());
  auto error = PatternMatcher::create({"[abc"});
  EXPECT_NE(error.error().message().find("'[abc'"), std::string::npos);
  // What Go's filepath.Match refuses (and so Docker): '-' and ']' unescaped
  // where they are not a range's or the class's, and an empty class.
  for (const char* refused : {"[a-]*", "[]]br", "[]", "[^]", "[-a]", "[a-\\", "[\xff]"}) {
    auto r = PatternMatcher::create({refused});
    EXPECT_FALSE(r.ok()) << refused;
  }
  EXPECT_EQ(PatternMatcher::create({"[a-]"}).error().message(),
            "pattern '[a-]' is invalid: ']' in a character class must be escaped with '\\'");
  EXPECT_EQ(PatternMatcher::create({"[]"}).error().message(),
            "pattern '[]' is invalid: empty character class");
  auto escaped = make({"[\\]\\-]x"});
  EXPECT_TRUE(escaped.matches("]x"));
  EXPECT_TRUE(escaped.matches("-x"));
  EXPECT_FALSE(escaped.matches("ax"));
}

// Found by the dockerignore fuzz target: runs of '*' and '**' made matching
// backtrack exponentially, so a hostile .dockerignore could hang a build.
TEST(PatternMatcher, ManyStarsDoNotBacktrackExponentially) {
  std::string stars(300, '*');
  auto m = PatternMatcher::create({"a" + stars + "b" + stars + "c" + stars + "/" + stars + "x"});
  ASSERT_TRUE(m) << m.error().message();
  std::string path(200, 'a');
  path += "/" + std::string(100, 'b');
  EXPECT_FALSE(m->matches(path));
  EXPECT_TRUE(m->matches("abc/x"));
}

// A pattern quoted in an error is shown with its control characters escaped.
TEST(PatternMatcher, InvalidPatternsAreQuotedPrintably) {
  auto error = PatternMatcher::create({"[\x1b[31m"});
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error().message().find('\x1b'), std::string::npos) << error.error().message();
}

// An ignore file is checked as the frontend reads it: comments (only at the
// line's start), blank lines and a byte-order mark are no patterns, and the
// first bad line is named by its number.
TEST(IgnoreText, TheFirstBadLineIsNamed) {
  EXPECT_TRUE(check_ignore_text(""));
  EXPECT_TRUE(check_ignore_text("\xEF\xBB\xBF# [a-] in a comment\n\n  \nlogs\r\n!logs/keep\n"));
  auto bad = check_ignore_text("logs\n# comment\n\n*.tmp\n[a-]*.txt\n[\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::invalid_argument);
  EXPECT_EQ(bad.error().message(),
            "line 5: pattern '[a-]*.txt' is invalid: ']' in a character class must be escaped "
            "with '\\'");
  // Only a '#' at the very start makes a comment, as in the frontend.
  EXPECT_EQ(check_ignore_text(" #[\n").error().message(),
            "line 1: pattern ' #[' is invalid: unterminated character class");
  EXPECT_EQ(check_ignore_text("a\n!\n").error().message(),
            "line 2: pattern '!' is invalid: '!' needs a pattern after it");
}

}  // namespace
}  // namespace envd::buildkit
