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

// What a -p value publishes, each binding as the flag value that gives it
// back, or the error.
std::string published(std::string_view text) {
  auto p = parse_publish(text);
  if (!p) return p.error().message();
  std::string out;
  for (const auto& item : *p) out += (out.empty() ? "" : " ") + item.to_string();
  return out;
}

TEST(FlagValues, PublishNeedsAnIpAddressAndGivesItselfBack) {
  auto p = parse_publish("[::1]::80/udp");
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->size(), 1U);
  EXPECT_EQ(p->front().host_ip, "::1");
  EXPECT_EQ(p->front().host_port, 0);
  EXPECT_EQ(p->front().container_port, 80);
  EXPECT_EQ(published("[::1]::80/udp"), "[::1]::80/udp");
  EXPECT_EQ(published("127.0.0.1:8080:80"), "127.0.0.1:8080:80/tcp");
  EXPECT_FALSE(parse_publish("[[x]]:1:2"));
  EXPECT_FALSE(parse_publish("host:1:2"));
  EXPECT_FALSE(parse_publish(std::string("127.0.0.1\0junk:1:2", 18)));
  EXPECT_FALSE(parse_publish("0:80"));
  EXPECT_FALSE(parse_publish("8080:65536"));
}

// docker run's other forms: a container port alone, and ranges.
TEST(FlagValues, PublishTakesAContainerPortAloneAndRanges) {
  EXPECT_EQ(published("80"), ":80/tcp");
  EXPECT_EQ(published("53/udp"), ":53/udp");
  EXPECT_EQ(published("8000-8002"), ":8000/tcp :8001/tcp :8002/tcp");
  EXPECT_EQ(published("9000-9001:8000-8001/udp"), "9000:8000/udp 9001:8001/udp");
  EXPECT_EQ(published("127.0.0.1::7000-7001"), "127.0.0.1::7000/tcp 127.0.0.1::7001/tcp");
  EXPECT_EQ(published("9000-9010:80"),
            "invalid --publish '9000-9010:80': a HOST range needs a CONTAINER range of the same "
            "length");
  EXPECT_EQ(published("8002-8000"),
            "invalid --publish '8002-8000': expected [[IP:]HOST:]CONTAINER[/tcp|udp|sctp], a "
            "port or a range");
  for (const char* bad : {"", "-", "80-", "-80", "/tcp", "80/icmp", "8000-70000", "a-b"}) {
    EXPECT_FALSE(parse_publish(bad)) << bad;
  }
}

TEST(FlagValues, VolumeIsDockersSourceTargetMode) {
  auto show = [](std::string_view text) -> std::string {
    auto v = parse_volume(text, "/home/me/project");
    if (!v) return v.error().message();
    return v->type + " [" + v->source + "] " + v->target + (v->read_only ? " ro" : "");
  };
  EXPECT_EQ(show("/srv/data:/data"), "bind [/srv/data] /data");
  EXPECT_EQ(show("/srv/data/:/data/:ro"), "bind [/srv/data] /data ro");
  // Relative only with a leading dot, made absolute here, as the docker CLI does.
  EXPECT_EQ(show(".:/src"), "bind [/home/me/project] /src");
  EXPECT_EQ(show("../shared:/shared:rw"), "bind [/home/me/shared] /shared");
  EXPECT_EQ(show("cache:/root/.cache"), "volume [cache] /root/.cache");
  EXPECT_EQ(show("/scratch"), "volume [] /scratch");
  const std::string form =
      " (expected [SOURCE:]TARGET[:ro|rw], SOURCE a host directory or a volume name)";
  EXPECT_EQ(show("data"), "invalid --volume 'data': TARGET is not an absolute path" + form);
  EXPECT_EQ(show("/a:/"), "invalid --volume '/a:/': TARGET cannot be /" + form);
  EXPECT_EQ(show("/a:/b:z"), "invalid --volume '/a:/b:z': mode 'z' is not ro or rw" + form);
  EXPECT_EQ(show("/a:/b:ro:x"),
            "invalid --volume '/a:/b:ro:x': it has more than three parts" + form);
  EXPECT_EQ(show(":/b"), "invalid --volume ':/b': SOURCE is empty" + form);
  EXPECT_EQ(show("~/x:/b"),
            "invalid --volume '~/x:/b': SOURCE '~/x' is neither a host directory (absolute, or "
            "starting with ./ or ../) nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)" +
                form);
  EXPECT_FALSE(parse_volume("/a:/\xff", "/"));
}

TEST(FlagValues, CpuSetsAndCapabilitiesAreLinuxs) {
  EXPECT_EQ(*parse_cpu_set("0-3"), "0-3");
  EXPECT_EQ(*parse_cpu_set("1,3,5-6"), "1,3,5-6");
  for (const char* bad : {"", ",", "1,", "3-1", "a", "1-", "-1", "0 1", "12345"}) {
    EXPECT_FALSE(parse_cpu_set(bad)) << bad;
  }
  EXPECT_EQ(parse_cpu_set("3-1").error().message(),
            "invalid --cpu-set '3-1': expected CPU numbers and ranges such as 0-3 or 1,3");
  EXPECT_EQ(*parse_capability("SYS_PTRACE"), "SYS_PTRACE");
  EXPECT_EQ(*parse_capability("cap_net_admin"), "NET_ADMIN");
  EXPECT_EQ(*parse_capability("all"), "ALL");
  for (const char* bad : {"", "CAP_", "sys ptrace", "SYS-PTRACE", "x\x1b"}) {
    EXPECT_FALSE(parse_capability(bad)) << bad;
  }
  EXPECT_EQ(parse_capability("SYS-PTRACE").error().message(),
            "invalid --cap-add 'SYS-PTRACE': expected a capability such as SYS_PTRACE, or ALL");
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
