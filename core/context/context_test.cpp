#include "context/context.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "util/text.hpp"

namespace envd::context {
namespace {

const std::string kRule =
    "names start with a letter or digit and contain only letters, digits, '_', '.', '+' and '-' "
    "(at most 64 characters)";

TEST(DefaultContext, MatchesTheSeed) {
  Context ctx = default_context();
  EXPECT_EQ(ctx.name, "default");
  EXPECT_EQ(ctx.builder, "docker-container");
  EXPECT_EQ(ctx.builder_address, "envd_buildkitd");
  EXPECT_EQ(ctx.runner, "docker");
  EXPECT_FALSE(ctx.runner_address.has_value());
  EXPECT_TRUE(ctx.builder_options.empty());
  EXPECT_TRUE(ctx.runner_options.empty());
  EXPECT_TRUE(ctx.id.empty());
  EXPECT_TRUE(ctx.unknown_fields.empty());
  EXPECT_EQ(ctx.builder_endpoint(), "docker-container://envd_buildkitd");
}

TEST(ValidateName, AcceptsTheDocumentedAlphabet) {
  for (const std::string& name : std::vector<std::string>{
           "a", "Z", "7", "default", "a1_.+-z", "x--", "0.1", "A+B", std::string(64, 'a')}) {
    EXPECT_TRUE(validate_name(name).ok()) << name;
  }
}

TEST(ValidateName, RejectsEverythingElseAndStatesTheRule) {
  for (const std::string& name : std::vector<std::string>{
           "", "-dash", "_under", ".dot", "+plus", "a/b", "sp ace", "dots/..", "tab\there",
           "caf\xc3\xa9", "a:b", "a@b", "a\\b", std::string(65, 'a')}) {
    Status st = validate_name(name);
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.error().code(), Errc::invalid_argument);
    EXPECT_EQ(st.error().message(),
              "invalid context name '" + util::printable(name) + "': " + kRule);
  }
}

TEST(ValidateName, ExactMessage) {
  Status st = validate_name("a/b");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(),
            "invalid context name 'a/b': names start with a letter or digit and contain only "
            "letters, digits, '_', '.', '+' and '-' (at most 64 characters)");
  EXPECT_EQ(std::string(kNameRule), kRule);
}

TEST(ValidateName, EscapesControlCharactersInTheMessage) {
  Status st = validate_name("a\x1b[31mred\n");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message().find('\x1b'), std::string::npos);
  EXPECT_EQ(st.error().message().find('\n'), std::string::npos);
  EXPECT_NE(st.error().message().find("'a\\x1b[31mred\\x0a'"), std::string::npos)
      << st.error().message();
}

TEST(NewContextId, IsSixteenLowercaseHexDigitsAndFresh) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = new_context_id();
    ASSERT_EQ(id.size(), 16u) << id;
    for (char c : id) {
      EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
    }
    EXPECT_TRUE(seen.insert(id).second) << "repeated id " << id;
  }
}

TEST(ContextList, FindReturnsTheNamedContextOrNull) {
  ContextList list;
  Context a = default_context();
  a.name = "a";
  Context b = default_context();
  b.name = "b";
  b.builder = "tcp";
  list.contexts = {a, b};

  Context* found = list.find("b");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->builder, "tcp");
  found->builder = "kube-pod";  // the pointer refers into the list
  EXPECT_EQ(list.contexts[1].builder, "kube-pod");

  const ContextList& view = list;
  ASSERT_NE(view.find("a"), nullptr);
  EXPECT_EQ(view.find("a"), &list.contexts[0]);
  EXPECT_EQ(view.find("c"), nullptr);
  EXPECT_EQ(view.find(""), nullptr);
  EXPECT_EQ(ContextList().find("a"), nullptr);
}

// util::printable is header-only and has no test target of its own; the context
// messages depend on it, so its contract is pinned here.
TEST(Printable, KeepsTextAndUtf8AndEscapesTheRest) {
  EXPECT_EQ(util::printable("plain text"), "plain text");
  EXPECT_EQ(util::printable("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93");
  EXPECT_EQ(util::printable("a\nb\tc\x7f"), "a\\x0ab\\x09c\\x7f");
  EXPECT_EQ(util::printable("\xff\xc3"), "\\xff\\xc3");           // invalid and truncated UTF-8
  EXPECT_EQ(util::printable("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(util::printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(util::printable("\xc2\x9b"), "\\xc2\\x9b");           // C1 CSI
  EXPECT_EQ(util::printable(std::string_view("a\0b", 3)), "a\\x00b");
}

TEST(Printable, CutsLongText) {
  EXPECT_EQ(util::printable("abcdef", 3), "abc...");
  EXPECT_EQ(util::printable("abc", 3), "abc");
  EXPECT_EQ(util::printable(std::string(1000, 'x')).size(), 1000u);
}

}  // namespace
}  // namespace envd::context
