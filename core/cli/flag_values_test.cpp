#include "cli/flag_values.hpp"

#include <gtest/gtest.h>

#include "cli/size_flag.hpp"

namespace envd::cli {
namespace {

TEST(FlagValues, KeyValueIsCutAtTheFirstEquals) {
  auto kv = parse_key_value("--build-arg", "A==b=c");
  ASSERT_TRUE(kv) << kv.error().message();
  EXPECT_EQ(kv->key, "A");
  EXPECT_EQ(kv->value, "=b=c");
  auto bad = parse_key_value("--build-arg", "=x");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "invalid --build-arg '=x': expected KEY=VALUE");
}

TEST(FlagValues, ErrorsQuoteTheValuePrintably) {
  auto bad = parse_key_value("--builder-opt", "\x1b[2J", "KEY=VALUE (KEY= removes KEY)");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "invalid --builder-opt '\\x1b[2J': expected KEY=VALUE (KEY= removes KEY)");
}

TEST(FlagValues, EnvTakesABareKeyButNoNul) {
  auto bare = parse_env_value("HOME");
  ASSERT_TRUE(bare);
  EXPECT_TRUE(bare->bare);
  EXPECT_EQ(bare->key, "HOME");
  EXPECT_FALSE(parse_env_value(std::string("A\0B=c", 5)));
  EXPECT_FALSE(parse_env_value("=c"));
}

TEST(FlagValues, PublishNeedsAnIpAddressAndGivesItselfBack) {
  auto p = parse_publish("[::1]::80/udp");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->host_ip, "::1");
  EXPECT_EQ(p->host_port, 0);
  EXPECT_EQ(p->container_port, 80);
  EXPECT_EQ(p->to_string(), "[::1]::80/udp");
  EXPECT_EQ(parse_publish("127.0.0.1:8080:80")->to_string(), "127.0.0.1:8080:80/tcp");
  EXPECT_FALSE(parse_publish("[[x]]:1:2"));
  EXPECT_FALSE(parse_publish("host:1:2"));
  EXPECT_FALSE(parse_publish(std::string("127.0.0.1\0junk:1:2", 18)));
  EXPECT_FALSE(parse_publish("0:80"));
  EXPECT_FALSE(parse_publish("8080:65536"));
}

TEST(SizeFlag, RefusesWhatIsNoNumberOrTooLarge) {
  EXPECT_EQ(*parse_size_flag("1.5g", "--memory"), 1610612736);
  EXPECT_FALSE(parse_size_flag(".", "--memory"));
  EXPECT_FALSE(parse_size_flag(std::string(400, '9'), "--memory"));
  // 2^63 rounds to itself as a double, which no int64 holds.
  EXPECT_FALSE(parse_size_flag("9223372036854775808", "--memory"));
  EXPECT_EQ(parse_size_flag("1\x1b", "--memory").error().message(),
            "invalid --memory '1\\x1b': expected a size such as 10GB, 512MiB or a number of "
            "bytes");
}

TEST(SplitCommandLine, SplitsAsAShellWithoutExpansions) {
  auto words = [](std::string_view text) {
    auto split = split_command_line("--shell", text);
    EXPECT_TRUE(split) << split.error().message();
    return split ? *split : std::vector<std::string>{};
  };
  EXPECT_EQ(words("sh"), std::vector<std::string>{"sh"});
  EXPECT_EQ(words("  bash   -l "), (std::vector<std::string>{"bash", "-l"}));
  EXPECT_EQ(words("sh -c \"exit 3\""), (std::vector<std::string>{"sh", "-c", "exit 3"}));
  EXPECT_EQ(words("sh -c 'echo \"$HOME\"'"),
            (std::vector<std::string>{"sh", "-c", "echo \"$HOME\""}));
  EXPECT_EQ(words("a\\ b c"), (std::vector<std::string>{"a b", "c"}));
  EXPECT_EQ(words("\"a\\\"b\\n\""), std::vector<std::string>{"a\"b\\n"});
  EXPECT_EQ(words("x '' \"\""), (std::vector<std::string>{"x", "", ""}));
  EXPECT_EQ(words("pre'fix 'and\"more\""), std::vector<std::string>{"prefix andmore"});
  EXPECT_EQ(words(""), std::vector<std::string>{});
}

TEST(SplitCommandLine, AnOpenQuoteOrATrailingBackslashIsAnError) {
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"sh -c \"exit 3", "--shell: a \" is not closed"},
           {"sh -c 'exit", "--shell: a ' is not closed"},
           {"sh \\", "--shell: a backslash ends the command line"}}) {
    auto split = split_command_line("--shell", text);
    ASSERT_FALSE(split) << text;
    EXPECT_EQ(split.error().code(), Errc::invalid_argument);
    EXPECT_EQ(split.error().message(), message);
  }
}

}  // namespace
}  // namespace envd::cli
