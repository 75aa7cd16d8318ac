#include "output/image_name.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <regex>
#include <string>
#include <vector>

namespace envd::output {
namespace {

TEST(ImageName, AcceptsDockerReferences) {
  for (const char* ok :
       {"hello", "hello:dev", "library/hello:1.0", "127.0.0.1:5000/x:y",
        "registry.example.com/team/app", "localhost/app:latest", "a__b/c-d.e:TAG_1",
        "[::1]:5000/x:y", "[fe80::1]/team/app",
        "[2001:DB8::5]:443/a@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}) {
    EXPECT_TRUE(validate_image_reference(ok)) << ok;
  }
}

TEST(ImageName, RejectsWithTheReason) {
  for (const char* bad : {"", "Hello", "a b", "x:", "x:-tag", "/x", "x/", "x//y", "x@sha256:zz"}) {
    auto st = validate_image_reference(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().message().rfind(std::string("invalid image reference '") + bad + "'", 0),
              0u)
        << st.error().message();
  }
}

// Every string over `alphabet` up to `max_length` characters.
std::vector<std::string> all_strings(const std::string& alphabet, size_t max_length) {
  std::vector<std::string> out{""};
  for (size_t begin = 0, length = 1; length <= max_length; ++length) {
    size_t end = out.size();
    for (size_t i = begin; i < end; ++i) {
      for (char c : alphabet) out.push_back(out[i] + c);
    }
    begin = end;
  }
  return out;
}

// The matchers are hand-written (std::regex cost every start of envd 5.5
// million instructions); Docker's reference package states the grammar as
// these regular expressions, and the two must agree on every short string.
void expect_same_as_regex(const char* pattern, const std::vector<std::string>& parts,
                          const std::function<std::string(const std::string&)>& reference) {
  const std::regex re(pattern);
  for (const std::string& part : parts) {
    bool want = std::regex_match(part, re);
    EXPECT_EQ(static_cast<bool>(validate_image_reference(reference(part))), want)
        << pattern << " on '" << part << "' as '" << reference(part) << "'";
  }
}

TEST(ImageName, PathComponentsFollowDockersGrammar) {
  expect_same_as_regex("[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*", all_strings("a0._-A", 5),
                       [](const std::string& c) { return "a/" + c; });
}

TEST(ImageName, TagsFollowDockersGrammar) {
  expect_same_as_regex("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", all_strings("aZ0_.-+", 4),
                       [](const std::string& t) { return "a:" + t; });
  EXPECT_TRUE(validate_image_reference("a:" + std::string(128, 't')));
  EXPECT_FALSE(validate_image_reference("a:" + std::string(129, 't')));
}

TEST(ImageName, RegistryHostsFollowDockersGrammar) {
  std::vector<std::string> hosts;
  for (const std::string& h : all_strings("aZ0-.:[]", 5)) {
    // Only a first part with '.', ':' or an upper-case letter is a host.
    if (h.find_first_of(".:Z") != std::string::npos) hosts.push_back(h);
  }
  expect_same_as_regex(
      "(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
      "(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
      "|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?",
      hosts, [](const std::string& h) { return h + "/a"; });
}

// Whatever was typed, the message stays one line of bounded length.
TEST(ImageName, LongOrUnprintableReferencesAreQuotedInPart) {
  std::string long_reference = "a/" + std::string(100000, 'B');
  auto st = validate_image_reference(long_reference);
  ASSERT_FALSE(st);
  EXPECT_LT(st.error().message().size(), 500u) << st.error().message().size();
  EXPECT_NE(st.error().message().find("..."), std::string::npos);

  auto control = validate_image_reference("a/b\nc\x1b[2J");
  ASSERT_FALSE(control);
  EXPECT_EQ(control.error().message().find('\n'), std::string::npos);
  EXPECT_EQ(control.error().message().find('\x1b'), std::string::npos);
  EXPECT_NE(control.error().message().find("\\x0a"), std::string::npos)
      << control.error().message();
}

TEST(ImageName, DigestsFollowDockersGrammar) {
  std::vector<std::string> digests;
  const std::string hex32(32, 'f');
  for (const std::string& algorithm : all_strings("a0.+_-", 4)) {
    digests.push_back(algorithm + ":" + hex32);
    digests.push_back(algorithm + ":" + hex32 + "AB09");
  }
  digests.push_back("sha256:" + hex32.substr(1));  // 31 digits
  digests.push_back("sha256:" + hex32 + "g");
  digests.push_back("sha256" + hex32);
  expect_same_as_regex("[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}", digests,
                       [](const std::string& d) { return "a@" + d; });
}

TEST(ImageName, DefaultTagIsTheLowerCasedDirectoryName) {
  auto tag = default_image_tag("/work/projects/MyApp");
  ASSERT_TRUE(tag) << tag.error().message();
  EXPECT_EQ(*tag, "myapp:dev");
  auto spaced = default_image_tag("/tmp/my app");
  ASSERT_FALSE(spaced);
  EXPECT_NE(spaced.error().message().find("pass -t NAME[:TAG]"), std::string::npos);
}

TEST(ImageName, EveryTagNamesTheImageOnceInItsOrder) {
  auto names = image_names({"b:1", "a:1", "b:1", "127.0.0.1:5000/b:1"}, "/work/app");
  ASSERT_TRUE(names) << names.error().message();
  EXPECT_EQ(*names, (std::vector<std::string>{"b:1", "a:1", "127.0.0.1:5000/b:1"}));
  auto derived = image_names({}, "/work/App");
  ASSERT_TRUE(derived) << derived.error().message();
  EXPECT_EQ(*derived, std::vector<std::string>{"app:dev"});
  // A bad one fails them all, named; a comma cannot pass for two names.
  auto bad = image_names({"a:1", "a:1,b:1"}, "/work/app");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("a:1,b:1"), std::string::npos) << bad.error().message();
  const std::string digest = "a@sha256:" + std::string(64, '0');
  auto pinned = image_names({digest}, "/work/app");
  ASSERT_FALSE(pinned);
  EXPECT_EQ(pinned.error().message(),
            "invalid image reference '" + digest + "': a build's tag cannot contain a digest");
}

}  // namespace
}  // namespace envd::output
