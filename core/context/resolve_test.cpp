#include "context/resolve.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "context/test_support.hpp"

namespace envd::context {
namespace {

using testing::ScopedEnv;

ContextList sample(const std::string& current) {
  ContextList list;
  for (const char* name : {"default", "flagged", "envy", "stored"}) {
    Context ctx = default_context();
    ctx.name = name;
    ctx.builder_address = std::string("addr-") + name;
    list.contexts.push_back(ctx);
  }
  list.current = current;
  list.file = "/cfg/contexts.json";
  return list;
}

TEST(ResolveContext, TheFlagWinsOverEverything) {
  ScopedEnv env("ENVD_CONTEXT", "envy");
  auto r = resolve_context(sample("stored"), std::string("flagged"));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->context.name, "flagged");
  EXPECT_EQ(r->context.builder_address, "addr-flagged");
  EXPECT_EQ(r->source, ContextSource::flag);
}

TEST(ResolveContext, TheEnvironmentWinsOverTheStore) {
  ScopedEnv env("ENVD_CONTEXT", "envy");
  auto r = resolve_context(sample("stored"), std::nullopt);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->context.name, "envy");
  EXPECT_EQ(r->source, ContextSource::environment);
}

TEST(ResolveContext, AnEmptyOrUnsetEnvironmentFallsThroughToTheStore) {
  for (const std::optional<std::string>& value :
       {std::optional<std::string>(""), std::optional<std::string>()}) {
    ScopedEnv env("ENVD_CONTEXT", value);
    auto r = resolve_context(sample("stored"), std::nullopt);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->context.name, "stored");
    EXPECT_EQ(r->source, ContextSource::store);
  }
}

TEST(ResolveContext, NoStoredCurrentFallsBackToDefault) {
  ScopedEnv env("ENVD_CONTEXT", std::nullopt);
  auto r = resolve_context(sample(""), std::nullopt);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->context.name, "default");
  EXPECT_EQ(r->source, ContextSource::fallback);
}

TEST(ResolveContext, AnEmptyFlagIsStillTheFlag) {
  ScopedEnv env("ENVD_CONTEXT", "envy");
  auto r = resolve_context(sample("stored"), std::string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message().rfind("invalid context name '' (from --context): ", 0), 0u)
      << r.error().message();
}

TEST(ResolveContext, UnknownNamesSayWhereTheyCameFrom) {
  {
    ScopedEnv env("ENVD_CONTEXT", "envy");
    auto r = resolve_context(sample("stored"), std::string("ghost"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::not_found);
    EXPECT_EQ(r.error().message(),
              "context 'ghost' (from --context) does not exist; 'envd context ls' lists the "
              "contexts");
  }
  {
    ScopedEnv env("ENVD_CONTEXT", "x");
    auto r = resolve_context(sample("stored"), std::nullopt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::not_found);
    EXPECT_EQ(r.error().message(),
              "context 'x' (from ENVD_CONTEXT) does not exist; unset ENVD_CONTEXT or set it to "
              "one of 'envd context ls'");
  }
  {
    ScopedEnv env("ENVD_CONTEXT", std::nullopt);
    auto r = resolve_context(sample("x"), std::nullopt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::not_found);
    EXPECT_EQ(r.error().message(),
              "current context 'x' in '/cfg/contexts.json' does not exist; run 'envd context use "
              "NAME'");
    ContextList unnamed = sample("x");
    unnamed.file.clear();
    auto r2 = resolve_context(unnamed, std::nullopt);
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error().message(),
              "current context 'x' in the store does not exist; run 'envd context use NAME'");
  }
  {
    ScopedEnv env("ENVD_CONTEXT", std::nullopt);
    ContextList list = sample("");
    list.contexts.erase(list.contexts.begin());  // no "default"
    auto r = resolve_context(list, std::nullopt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::not_found);
    EXPECT_EQ(r.error().message(),
              "context 'default' does not exist and no current context is set; run 'envd context "
              "use NAME'");
  }
}

TEST(ResolveContext, InvalidNamesAreRejectedWithTheirOrigin) {
  const std::string rule =
      "names start with a letter or digit and contain only letters, digits, '_', '.', '+' and "
      "'-' (at most 64 characters)";
  {
    ScopedEnv env("ENVD_CONTEXT", "a/b");
    auto r = resolve_context(sample("stored"), std::nullopt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::invalid_argument);
    EXPECT_EQ(r.error().message(), "invalid context name 'a/b' (from ENVD_CONTEXT): " + rule);
  }
  {
    ScopedEnv env("ENVD_CONTEXT", std::nullopt);
    auto r = resolve_context(sample("stored"), std::string("-x"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "invalid context name '-x' (from --context): " + rule);
  }
  {
    ScopedEnv env("ENVD_CONTEXT", std::nullopt);
    auto r = resolve_context(sample("bad name"), std::nullopt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(
        r.error().message(),
        "invalid context name 'bad name' (the current context in '/cfg/contexts.json'): " + rule);
  }
  {
    ScopedEnv env("ENVD_CONTEXT", "evil\x1b[2J");
    auto r = resolve_context(sample("stored"), std::nullopt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message().find('\x1b'), std::string::npos);
  }
}

TEST(ChooseContext, PicksANameWithoutLookingItUp) {
  {
    // Names that do not exist or are invalid are still chosen: ls marks them.
    ScopedEnv env("ENVD_CONTEXT", "ghost");
    ContextChoice flagged = choose_context("stored", std::string("a/b"));
    EXPECT_EQ(flagged.name, "a/b");
    EXPECT_EQ(flagged.source, ContextSource::flag);
    ContextChoice from_env = choose_context("stored", std::nullopt);
    EXPECT_EQ(from_env.name, "ghost");
    EXPECT_EQ(from_env.source, ContextSource::environment);
  }
  {
    ScopedEnv env("ENVD_CONTEXT", "");
    ContextChoice stored = choose_context("stored", std::nullopt);
    EXPECT_EQ(stored.name, "stored");
    EXPECT_EQ(stored.source, ContextSource::store);
    ContextChoice fallback = choose_context("", std::nullopt);
    EXPECT_EQ(fallback.name, "default");
    EXPECT_EQ(fallback.source, ContextSource::fallback);
  }
}

TEST(ResolveContext, DescribeNamesEachSource) {
  EXPECT_STREQ(describe(ContextSource::flag), "--context");
  EXPECT_STREQ(describe(ContextSource::environment), "ENVD_CONTEXT");
  EXPECT_STREQ(describe(ContextSource::store), "the store's current context");
  EXPECT_STREQ(describe(ContextSource::fallback), "the default");
}

}  // namespace
}  // namespace envd::context
