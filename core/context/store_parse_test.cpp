#include "context/store_parse.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "context/record.hpp"
#include "context/store.hpp"
#include "context/test_support.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::TempDir;

const fs::path kFile = "/somewhere/contexts.json";

// The store's reading of `text` equals the tree reader's, list or error.
void expect_same_as_tree(const std::string& text) {
  SCOPED_TRACE(text);
  auto read = parse_store(text, kFile);
  auto tree = read_store_tree(text, kFile);
  ASSERT_EQ(read.ok(), tree.ok());
  if (!tree) {
    EXPECT_EQ(read.error().message(), tree.error().message());
    return;
  }
  EXPECT_EQ(read->current, tree->current);
  EXPECT_EQ(read->contexts, tree->contexts);
  EXPECT_EQ(read->unknown_fields, tree->unknown_fields);
  EXPECT_EQ(read->file, kFile);
}

TEST(StoreParse, WhatTheStoreWritesIsReadInOnePass) {
  TempDir tmp;
  ContextStore store(tmp.path() / "envd");
  ASSERT_TRUE(store.update([](ContextList& list) {
    Context remote = default_context();
    remote.name = "remote";
    remote.builder = "tcp";
    remote.builder_address = "127.0.0.1:1234";
    remote.runner_address = "http://127.0.0.1:8080";
    remote.builder_options = {{"ca", "/etc/\"quoted\"\n"}, {"tls", "true"}};
    remote.runner_options = {{"token", "\xc3\xa9t\xc3\xa9 \\ \u00e9"}};
    list.contexts.push_back(remote);
    list.current = "remote";
    return Status{};
  }));
  std::string text = read_text(store.file());

  auto one_pass = read_store_in_one_pass(text);
  ASSERT_TRUE(one_pass.has_value());
  auto tree = read_store_tree(text, store.file());
  ASSERT_TRUE(tree.ok()) << tree.error().message();
  EXPECT_EQ(one_pass->current, "remote");
  EXPECT_EQ(one_pass->contexts, tree->contexts);
  ASSERT_EQ(one_pass->contexts.size(), 2U);
  EXPECT_EQ(one_pass->contexts[1].builder_options.at("ca"), "/etc/\"quoted\"\n");
  EXPECT_EQ(one_pass->contexts[1].runner_address, "http://127.0.0.1:8080");
  EXPECT_FALSE(one_pass->contexts[0].runner_address.has_value());
}

TEST(StoreParse, EscapesAndLongStringsAreReadWhole) {
  // Escapes make the parser hand a string over in parts.
  std::string long_name(60, 'n');
  std::string text = R"({"current":"a\u0062c","contexts":[{"name":"abc","builder":"tc\u0070",)"
                     R"("builder_address":"h\\o\"st:)" +
                     std::string(5000, 'x') +
                     R"(","runner":"docker","runner_address":null,"id":"i\u0064-1"},)"
                     R"({"name":")" +
                     long_name + R"(","builder":"tcp","builder_address":"b","runner":"docker"}]})";
  auto one_pass = read_store_in_one_pass(text);
  ASSERT_TRUE(one_pass.has_value());
  EXPECT_EQ(one_pass->current, "abc");
  EXPECT_EQ(one_pass->contexts[0].builder, "tcp");
  EXPECT_EQ(one_pass->contexts[0].builder_address, "h\\o\"st:" + std::string(5000, 'x'));
  EXPECT_EQ(one_pass->contexts[0].id, "id-1");
  EXPECT_FALSE(one_pass->contexts[0].runner_address.has_value());
  EXPECT_EQ(one_pass->contexts[1].name, long_name);
  // No id stored: derived, as the tree reader derives it.
  EXPECT_EQ(one_pass->contexts[1].id, derived_context_id(long_name, 0));
  expect_same_as_tree(text);
}

TEST(StoreParse, AnythingOffTheUsualShapeGoesToTheTreeReader) {
  const std::string ok_record =
      R"({"name":"a","builder":"tcp","builder_address":"h:1","runner":"docker","id":"i1"})";
  const std::vector<std::string> declined = {
      // Fields this version does not know: only the tree keeps them.
      R"({"contexts":[{"name":"a","builder":"tcp","builder_address":"h:1","runner":"docker","x":1}]})",
      R"({"contexts":[)" + ok_record + R"(],"future":{"a":[1,2]}})",
      // Repeated keys.
      R"({"contexts":[{"name":"a","name":"b","builder":"tcp","builder_address":"h","runner":"d"}]})",
      R"({"current":"a","current":"a","contexts":[)" + ok_record + "]}",
      R"({"contexts":[{"name":"a","builder":"tcp","builder_address":"h","runner":"d",)"
      R"("builder_options":{"k":"1","k":"2"}}]})",
      // Wrong types.
      R"({"current":null,"contexts":[)" + ok_record + "]}",
      R"({"contexts":{}})",
      R"({"contexts":[1]})",
      R"({"contexts":[{"name":"a","builder":"tcp","builder_address":"h","runner":"d","id":7}]})",
      R"({"contexts":[{"name":"a","builder":true,"builder_address":"h","runner":"d"}]})",
      R"({"contexts":[{"name":"a","builder":"tcp","builder_address":"h","runner":"d",)"
      R"("builder_options":{"k":1}}]})",
      R"({"contexts":[{"name":"a","builder":"tcp","builder_address":"h","runner":"d",)"
      R"("runner_options":"k"}]})",
      R"({"contexts":[{"name":"a","builder":"tcp","builder_address":"h","runner":"d",)"
      R"("builder_options":null}]})",
      R"([])",
      R"("contexts")",
      // Missing or empty fields, broken rules.
      R"({"current":"a"})",
      R"({"contexts":[{"name":"a","builder":"tcp","runner":"docker"}]})",
      R"({"contexts":[{"name":"a","builder":"tcp","builder_address":"h","runner":"d","id":""}]})",
      R"({"contexts":[{"name":"a/b","builder":"tcp","builder_address":"h","runner":"d"}]})",
      R"({"contexts":[{"name":"a","builder":"","builder_address":"h","runner":"d"}]})",
      R"({"contexts":[{"name":"a","builder":"t","builder_address":"h","runner":"d","id":"a b"}]})",
      R"({"contexts":[)" + ok_record + "," + ok_record + "]}",
      // Not one JSON text.
      R"({"contexts":[)" + ok_record + "]} x",
      R"({"contexts":[)" + ok_record + "]",
      R"({"contexts":[]} /* a comment */)",
      "",
      "\xff",
  };
  for (const std::string& text : declined) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(read_store_in_one_pass(text).has_value());
    expect_same_as_tree(text);
  }
  // Its own shape, with room around it, is read in one pass.
  for (const std::string& text :
       std::vector<std::string>{"\n {\"contexts\":[]}\n\n", R"({"contexts":[],"current":""})",
                                R"({"contexts":[)" + ok_record + R"(],"current":"elsewhere"})"}) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(read_store_in_one_pass(text).has_value());
    expect_same_as_tree(text);
  }
}

TEST(StoreParse, AStoreLargerThanTheRoomReservedIsReadWhole) {
  // More records than the one-pass reader reserves room for up front.
  std::string text = R"({"current":"ctx-0","contexts":[)";
  for (int i = 0; i < 5000; ++i) {
    if (i != 0) text += ',';
    text += R"({"name":"ctx-)" + std::to_string(i) +
            R"(","builder":"tcp","builder_address":"10.0.0.1:)" + std::to_string(i) +
            R"(","runner":"docker"})";
  }
  text += "]}";
  auto one_pass = read_store_in_one_pass(text);
  ASSERT_TRUE(one_pass.has_value());
  ASSERT_EQ(one_pass->contexts.size(), 5000U);
  EXPECT_EQ(one_pass->contexts[4999].builder_address, "10.0.0.1:4999");
  expect_same_as_tree(text);
}

Context named(const std::string& name, const std::string& id) {
  Context ctx = default_context();
  ctx.name = name;
  ctx.id = id;
  return ctx;
}

TEST(StoreParse, TheRepeatReportedIsTheFirstMetInListOrder) {
  auto message = [](std::vector<Context> contexts) {
    ContextList list;
    list.contexts = std::move(contexts);
    Status st = check_list(list);
    return st ? std::string() : st.error().message();
  };
  EXPECT_EQ(message({named("a", "1"), named("b", "2"), named("c", "3")}), "");
  // "b" is met again (index 3) before "a" (index 4).
  EXPECT_EQ(message({named("a", "1"), named("b", "2"), named("c", "3"), named("b", "4"),
                     named("a", "5")}),
            "two contexts are named 'b'");
  // Of three with one id, the first two are named.
  EXPECT_EQ(message({named("x", "9"), named("a", "1"), named("b", "1"), named("c", "1")}),
            "contexts 'a' and 'b' share the id '1'");
  EXPECT_EQ(message({named("x", "1"), named("y", "2"), named("z", "2"), named("w", "1")}),
            "contexts 'y' and 'z' share the id '2'");
  // An id met again before a name is reported first, and at one context the name first.
  EXPECT_EQ(message({named("a", "1"), named("b", "1"), named("a", "3")}),
            "contexts 'a' and 'b' share the id '1'");
  EXPECT_EQ(message({named("a", "1"), named("a", "1")}), "two contexts are named 'a'");
  // Contexts without an id share nothing.
  EXPECT_EQ(message({named("a", ""), named("b", "")}), "");
}

}  // namespace
}  // namespace envd::context
