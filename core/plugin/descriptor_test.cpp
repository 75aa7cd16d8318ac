#include "plugin/descriptor.hpp"

#include <gtest/gtest.h>

#include "plugin/registry.hpp"
#include "plugin/test_support.hpp"
#include "util/text.hpp"

namespace envd::plugin {
namespace {

using testing::kStubBuilderTable;
using testing::kStubRunnerTable;
using testing::stub_descriptor;

// Registers `d` as a built-in, expects a refusal, and returns its reason after
// checking that the refused driver is listed as such.
std::string refusal(const envd_plugin_descriptor* d) {
  Registry registry;
  Status st = registry.add_builtin(d);
  EXPECT_FALSE(st);
  if (st) return "(accepted)";
  EXPECT_EQ(st.error().code(), Errc::invalid_argument);
  const auto& modules = registry.modules();
  EXPECT_EQ(modules.size(), 1u);
  if (modules.size() != 1) return "(not listed)";
  EXPECT_EQ(modules[0].path, "<built-in>");
  EXPECT_FALSE(modules[0].ok);
  EXPECT_EQ(st.error().message(), "built-in driver refused: " + modules[0].reason);
  EXPECT_EQ(registry.warnings(),
            std::vector<std::string>{"skipping plugin '<built-in>': " + modules[0].reason});
  return modules[0].reason;
}

class DescriptorTest : public ::testing::Test {
 protected:
  envd_plugin_descriptor builder = stub_descriptor(ENVD_KIND_BUILDER, "mem");
  envd_plugin_descriptor runner = stub_descriptor(ENVD_KIND_RUNNER, "mem-runner");
  envd_builder_vtable builder_table = kStubBuilderTable;
  envd_runner_vtable runner_table = kStubRunnerTable;
};

TEST_F(DescriptorTest, ValidBuilderAndRunnerAreAccepted) {
  Registry registry;
  ASSERT_TRUE(registry.add_builtin(&builder));
  ASSERT_TRUE(registry.add_builtin(&runner));
  ASSERT_EQ(registry.modules().size(), 2u);
  const ModuleInfo& b = registry.modules()[0];
  EXPECT_TRUE(b.ok);
  EXPECT_EQ(b.path, "<built-in>");
  EXPECT_EQ(b.type, "mem");
  EXPECT_EQ(b.kind, Kind::builder);
  EXPECT_EQ(b.version, "0.1.0");
  EXPECT_EQ(b.description, "a stub driver for tests");
  EXPECT_EQ(b.maturity, ENVD_MATURITY_EXPERIMENTAL);
  EXPECT_EQ(b.abi_major, ENVD_ABI_MAJOR);
  EXPECT_EQ(b.abi_minor, ENVD_ABI_MINOR);
  EXPECT_EQ(registry.modules()[1].kind, Kind::runner);
  EXPECT_TRUE(registry.warnings().empty());
}

TEST_F(DescriptorTest, NullDescriptor) {
  EXPECT_EQ(refusal(nullptr), "entry returned no descriptor");
}

TEST_F(DescriptorTest, NewerMajorIsRefusedBeforeAnythingElseIsRead) {
  builder.abi_major = ENVD_ABI_MAJOR + 1;
  builder.struct_size = 1;  // would be refused too, but the version decides first
  builder.type_name = nullptr;
  EXPECT_EQ(refusal(&builder), "needs ABI " + std::to_string(ENVD_ABI_MAJOR + 1) + "." +
                                   std::to_string(ENVD_ABI_MINOR) + ", this envd has " +
                                   std::to_string(ENVD_ABI_MAJOR) + "." +
                                   std::to_string(ENVD_ABI_MINOR));
}

TEST_F(DescriptorTest, OlderMajorIsRefused) {
  builder.abi_major = ENVD_ABI_MAJOR - 1;
  builder.abi_minor = 7;
  EXPECT_EQ(refusal(&builder), "needs ABI " + std::to_string(ENVD_ABI_MAJOR - 1) +
                                   ".7, this envd has " + std::to_string(ENVD_ABI_MAJOR) + "." +
                                   std::to_string(ENVD_ABI_MINOR));
}

TEST_F(DescriptorTest, NewerMinorIsRefused) {
  builder.abi_minor = ENVD_ABI_MINOR + 1;
  EXPECT_EQ(refusal(&builder), "needs ABI " + std::to_string(ENVD_ABI_MAJOR) + "." +
                                   std::to_string(ENVD_ABI_MINOR + 1) + ", this envd has " +
                                   std::to_string(ENVD_ABI_MAJOR) + "." +
                                   std::to_string(ENVD_ABI_MINOR));
}

TEST_F(DescriptorTest, StructTooSmall) {
  builder.struct_size = kDescriptorSizeV1_0 - 1;
  EXPECT_EQ(refusal(&builder), "descriptor is too small: struct_size is " +
                                   std::to_string(kDescriptorSizeV1_0 - 1) + " bytes, ABI 1.0 " +
                                   "needs at least " + std::to_string(kDescriptorSizeV1_0));
}

TEST_F(DescriptorTest, FileOptionsAreChecked) {
  static const char* const good[] = {"tls-ca", "config", "a.b-c", nullptr};
  builder.file_options = good;
  Registry registry;
  ASSERT_TRUE(registry.add_builtin(&builder));
  EXPECT_EQ(file_options(&builder), (std::vector<std::string>{"tls-ca", "config", "a.b-c"}));

  static const char* const bad[] = {"tls-ca", "-x", nullptr};
  builder.file_options = bad;
  EXPECT_EQ(refusal(&builder),
            "file option '-x' is invalid: it must match ^[a-z0-9][a-z0-9.-]{0,63}$");

  static const char* const many[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i",
                                     "j", "k", "l", "m", "n", "o", "p", "q", nullptr};
  builder.file_options = many;
  EXPECT_EQ(refusal(&builder),
            "file option list has more than 16 keys (or lacks its NULL terminator)");
}

TEST_F(DescriptorTest, AOneZeroDescriptorIsNotReadPastItsEnd) {
  static const char* const keys[] = {"tls-ca", nullptr};
  builder.file_options = keys;
  builder.abi_minor = 0;
  builder.struct_size = kDescriptorSizeV1_0;
  EXPECT_TRUE(file_options(&builder).empty());
  Registry registry;
  EXPECT_TRUE(registry.add_builtin(&builder));
}

TEST_F(DescriptorTest, LargerStructFromALaterBuildIsAccepted) {
  builder.struct_size = sizeof(envd_plugin_descriptor) + 64;
  Registry registry;
  EXPECT_TRUE(registry.add_builtin(&builder));
}

TEST_F(DescriptorTest, UnknownKind) {
  builder.kind = 3;
  EXPECT_EQ(refusal(&builder), "descriptor has unknown kind 3 (1 is a builder, 2 a runner)");
  builder.kind = 0;
  EXPECT_EQ(refusal(&builder), "descriptor has unknown kind 0 (1 is a builder, 2 a runner)");
}

TEST_F(DescriptorTest, MissingTypeName) {
  builder.type_name = nullptr;
  EXPECT_EQ(refusal(&builder), "descriptor has no type name");
}

TEST_F(DescriptorTest, InvalidTypeNames) {
  for (const char* name : {"", "Tcp", "-tcp", "tcp_x", "tcp.x", "tcp x",
                           "a23456789012345678901234567890123" /* 33 */, "t\ncp"}) {
    builder.type_name = name;
    EXPECT_EQ(refusal(&builder), "type name '" + util::printable(name, 64) +
                                     "' is invalid: it must match ^[a-z0-9][a-z0-9-]{0,31}$")
        << name;
  }
}

TEST_F(DescriptorTest, ValidTypeNameEdges) {
  for (const char* name : {"0", "a-", "docker-container", "a2345678901234567890123456789012"}) {
    EXPECT_TRUE(is_valid_type_name(name)) << name;
  }
}

TEST_F(DescriptorTest, MissingOrBadVersionAndDescription) {
  builder.version = nullptr;
  EXPECT_EQ(refusal(&builder), "descriptor has no version");
  builder.version = "1.0\n";
  EXPECT_EQ(refusal(&builder), "version '1.0\\x0a' is not one line of UTF-8 text");
  builder.version = "0.1.0";
  builder.description = nullptr;
  EXPECT_EQ(refusal(&builder), "descriptor has no description");
  builder.description = "caf\xe9";  // Latin-1, not UTF-8
  EXPECT_EQ(refusal(&builder), "description 'caf\\xe9' is not one line of UTF-8 text");
  builder.description = "caf\xc3\xa9 \xe2\x9c\x93";  // UTF-8 is fine
  Registry registry;
  EXPECT_TRUE(registry.add_builtin(&builder));
}

// Bounded, so that `envd plugin ls` stays a table: a version is kept to 64
// bytes and a description to 256, cut at a character's start with "..."
// after them; the module is not refused for it (ABI 1.x took any length).
TEST_F(DescriptorTest, LongVersionAndDescriptionAreCut) {
  const std::string version(64, '1');
  const std::string description(256, 'd');
  builder.version = version.c_str();
  builder.description = description.c_str();
  ModuleInfo exact = describe_descriptor(&builder);
  EXPECT_TRUE(exact.ok);
  EXPECT_EQ(exact.version, version);
  EXPECT_EQ(exact.description, description);
  const std::string long_version(65, '1');
  builder.version = long_version.c_str();
  std::string long_description(99999, 'd');
  long_description += "\xc3\xa9";  // a two-byte character at the cut is kept whole or left out
  builder.description = long_description.c_str();
  ModuleInfo cut = describe_descriptor(&builder);
  EXPECT_TRUE(cut.ok) << cut.reason;
  EXPECT_EQ(cut.version, std::string(64, '1') + "...");
  EXPECT_EQ(cut.description, std::string(256, 'd') + "...");
  // What a scan keeps is what the cache takes back.
  auto again = facts_from_json(facts_to_json(cut));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->description, cut.description);

  // A character that straddles the limit is left out whole, so the text
  // stays within what the cache takes back (it once overshot, and the scan's
  // answer was refused as unreadable).
  const std::string wide_version = std::string(63, 'v') + "\xc3\xa9\xc3\xa9\xc3\xa9";
  const std::string wide_description = std::string(255, 'd') + "\xe2\x82\xac\xe2\x82\xac";
  builder.version = wide_version.c_str();
  builder.description = wide_description.c_str();
  ModuleInfo wide = describe_descriptor(&builder);
  EXPECT_TRUE(wide.ok) << wide.reason;
  EXPECT_EQ(wide.version, std::string(63, 'v') + "...");
  EXPECT_EQ(wide.description, std::string(255, 'd') + "...");
  auto wide_again = facts_from_json(facts_to_json(wide));
  ASSERT_TRUE(wide_again);
  EXPECT_EQ(wide_again->version, wide.version);
  EXPECT_EQ(wide_again->description, wide.description);
}

TEST_F(DescriptorTest, UnknownMaturityIsAcceptedAndShownAsUnknown) {
  builder.maturity = 42;
  Registry registry;
  ASSERT_TRUE(registry.add_builtin(&builder));
  EXPECT_STREQ(maturity_name(registry.modules()[0].maturity), "unknown");
}

TEST_F(DescriptorTest, MissingFreeString) {
  builder.free_string = nullptr;
  EXPECT_EQ(refusal(&builder), "descriptor has no free_string function");
}

TEST_F(DescriptorTest, BuilderWithoutBuilderTable) {
  builder.builder = nullptr;
  EXPECT_EQ(refusal(&builder), "kind is builder but the builder table is missing");
}

TEST_F(DescriptorTest, BuilderWithRunnerTableToo) {
  builder.runner = &kStubRunnerTable;
  EXPECT_EQ(refusal(&builder), "kind is builder but a runner table is set too");
}

TEST_F(DescriptorTest, RunnerWithOnlyABuilderTable) {
  runner.runner = nullptr;
  runner.builder = &kStubBuilderTable;
  EXPECT_EQ(refusal(&runner), "kind is runner but the runner table is missing");
  runner.runner = &kStubRunnerTable;
  EXPECT_EQ(refusal(&runner), "kind is runner but a builder table is set too");
}

TEST_F(DescriptorTest, TablesTooSmall) {
  builder_table.struct_size = kBuilderTableSizeV1_0 - sizeof(void*);
  builder.builder = &builder_table;
  EXPECT_EQ(refusal(&builder), "builder table is too small: struct_size is " +
                                   std::to_string(kBuilderTableSizeV1_0 - sizeof(void*)) +
                                   " bytes, ABI 1.0 needs at least " +
                                   std::to_string(kBuilderTableSizeV1_0));
  runner_table.struct_size = 0;
  runner.runner = &runner_table;
  EXPECT_EQ(refusal(&runner),
            "runner table is too small: struct_size is 0 bytes, ABI 1.0 "
            "needs at least " +
                std::to_string(kRunnerTableSizeV1_0));
}

TEST_F(DescriptorTest, EachRequiredBuilderFunction) {
  struct Case {
    const char* name;
    void (*clear)(envd_builder_vtable&);
  };
  const Case cases[] = {
      {"normalize_address", [](envd_builder_vtable& t) { t.normalize_address = nullptr; }},
      {"normalize_options", [](envd_builder_vtable& t) { t.normalize_options = nullptr; }},
      {"dial", [](envd_builder_vtable& t) { t.dial = nullptr; }},
      {"status", [](envd_builder_vtable& t) { t.status = nullptr; }},
      {"bootstrap", [](envd_builder_vtable& t) { t.bootstrap = nullptr; }},
      {"stop", [](envd_builder_vtable& t) { t.stop = nullptr; }},
      {"remove", [](envd_builder_vtable& t) { t.remove = nullptr; }},
  };
  for (const Case& c : cases) {
    builder_table = kStubBuilderTable;
    c.clear(builder_table);
    builder.builder = &builder_table;
    EXPECT_EQ(refusal(&builder),
              std::string("builder table lacks the required function '") + c.name + "'");
  }
}

TEST_F(DescriptorTest, EachRequiredRunnerFunction) {
  struct Case {
    const char* name;
    void (*clear)(envd_runner_vtable&);
  };
  const Case cases[] = {
      {"normalize_address", [](envd_runner_vtable& t) { t.normalize_address = nullptr; }},
      {"normalize_options", [](envd_runner_vtable& t) { t.normalize_options = nullptr; }},
      {"create", [](envd_runner_vtable& t) { t.create = nullptr; }},
      {"list", [](envd_runner_vtable& t) { t.list = nullptr; }},
      {"inspect", [](envd_runner_vtable& t) { t.inspect = nullptr; }},
      {"remove", [](envd_runner_vtable& t) { t.remove = nullptr; }},
  };
  for (const Case& c : cases) {
    runner_table = kStubRunnerTable;
    c.clear(runner_table);
    runner.runner = &runner_table;
    EXPECT_EQ(refusal(&runner),
              std::string("runner table lacks the required function '") + c.name + "'");
  }
}

TEST_F(DescriptorTest, RefusedAfterReadingTheTypeKeepsTheFactsRead) {
  builder.free_string = nullptr;
  ModuleInfo info = describe_descriptor(&builder);
  EXPECT_FALSE(info.ok);
  EXPECT_EQ(info.type, "mem");
  EXPECT_EQ(info.kind, Kind::builder);
  EXPECT_EQ(info.version, "0.1.0");
}

TEST(DescriptorFacts, JsonRoundTrip) {
  ModuleInfo info;
  info.ok = true;
  info.type = "tcp";
  info.kind = Kind::runner;
  info.version = "1.2.3";
  info.description = "d";
  info.maturity = 2;
  info.abi_major = 1;
  info.abi_minor = 0;
  auto back = facts_from_json(facts_to_json(info));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->ok);
  EXPECT_EQ(back->type, "tcp");
  EXPECT_EQ(back->kind, Kind::runner);
  EXPECT_EQ(back->version, "1.2.3");
  EXPECT_EQ(back->description, "d");
  EXPECT_EQ(back->maturity, 2);

  ModuleInfo bad;
  bad.reason = "needs ABI 2.0, this envd has 1.0";
  bad.abi_major = 2;
  back = facts_from_json(facts_to_json(bad));
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->ok);
  EXPECT_EQ(back->reason, bad.reason);
  EXPECT_EQ(back->abi_major, 2);
}

TEST(DescriptorFacts, MalformedJsonIsRejected) {
  auto good = facts_to_json(describe_descriptor(nullptr));
  ASSERT_TRUE(facts_from_json(good));
  auto wrong = good;
  wrong["ok"] = "yes";
  EXPECT_FALSE(facts_from_json(wrong));
  wrong = good;
  wrong.erase("reason");
  EXPECT_FALSE(facts_from_json(wrong));
  wrong = good;
  wrong["kind"] = "plugin";
  EXPECT_FALSE(facts_from_json(wrong));
  wrong = good;
  wrong["abi_major"] = 70000;
  EXPECT_FALSE(facts_from_json(wrong));
  wrong = good;
  wrong["ok"] = true;  // usable, but no valid type and a reason: not written by us
  EXPECT_FALSE(facts_from_json(wrong));
}

}  // namespace
}  // namespace envd::plugin
