// Guards the plugin ABI against silent edits: the declarations of
// plugin_abi.h (comments and layout stripped) are pinned to a fingerprint
// together with the ABI version. Changing the declarations fails this test
// until the version is bumped (minor for appended fields, major otherwise) and
// the pin below is updated in the same commit.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "envd/plugin_abi.h"

namespace {

// The header's code with comments removed and whitespace collapsed.
std::string declarations(const std::string& text) {
  std::string out;
  bool space = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "/*") == 0) {
      size_t end = text.find("*/", i + 2);
      i = (end == std::string::npos) ? text.size() : end + 1;
      space = true;
      continue;
    }
    if (text.compare(i, 2, "//") == 0) {
      size_t end = text.find('\n', i);
      i = (end == std::string::npos) ? text.size() : end;
      space = true;
      continue;
    }
    if (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += text[i];
  }
  return out;
}

uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

TEST(PluginAbi, DeclarationsMatchThePinnedVersion) {
  std::ifstream in(ENVD_ABI_HEADER);
  ASSERT_TRUE(in) << "cannot read " << ENVD_ABI_HEADER;
  std::stringstream text;
  text << in.rdbuf();
  std::ostringstream fingerprint;
  fingerprint << std::hex << fnv1a(declarations(text.str()));

  // Update together, and only with a version bump when declarations change.
  constexpr int kPinnedMajor = 1;
  constexpr int kPinnedMinor = 7;
  const std::string kPinnedFingerprint = "91f5fcb234841ef5";

  EXPECT_EQ(ENVD_ABI_MAJOR, kPinnedMajor);
  EXPECT_EQ(ENVD_ABI_MINOR, kPinnedMinor);
  EXPECT_EQ(fingerprint.str(), kPinnedFingerprint)
      << "plugin_abi.h declarations changed: bump ENVD_ABI_MINOR (appended fields) or "
         "ENVD_ABI_MAJOR (anything else), then pin the new fingerprint";
}

TEST(PluginAbi, StructsStartWithTheirVersionFields) {
  EXPECT_EQ(offsetof(envd_plugin_descriptor, abi_major), 0u);
  EXPECT_EQ(offsetof(envd_plugin_descriptor, abi_minor), 2u);
  EXPECT_EQ(offsetof(envd_plugin_descriptor, struct_size), 4u);
  EXPECT_EQ(offsetof(envd_builder_vtable, struct_size), 0u);
  EXPECT_EQ(offsetof(envd_runner_vtable, struct_size), 0u);
  EXPECT_EQ(offsetof(envd_transport, struct_size), 0u);
}

}  // namespace
