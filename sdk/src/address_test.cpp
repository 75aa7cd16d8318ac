#include "envd/address.hpp"

#include <gtest/gtest.h>

namespace envd::sdk {
namespace {

// The message of a failed parse, or a marker that makes the assertion fail.
template <typename T>
std::string error_of(const Result<T>& result) {
  if (result) return "<parsed successfully>";
  EXPECT_EQ(result.error().code(), Errc::invalid_argument);
  return result.error().message();
}

TEST(HostSyntax, Ipv4IsStrictDottedQuad) {
  EXPECT_TRUE(is_ipv4("10.0.0.5"));
  EXPECT_TRUE(is_ipv4("0.0.0.0"));
  EXPECT_TRUE(is_ipv4("255.255.255.255"));
  EXPECT_FALSE(is_ipv4("256.0.0.1"));
  EXPECT_FALSE(is_ipv4("10.0.0"));
  EXPECT_FALSE(is_ipv4("10.0.0.5.6"));
  EXPECT_FALSE(is_ipv4("010.0.0.5"));  // octal look-alike
  EXPECT_FALSE(is_ipv4("10..0.5"));
  EXPECT_FALSE(is_ipv4("a.b.c.d"));
  EXPECT_FALSE(is_ipv4(""));
}

TEST(HostSyntax, Ipv6) {
  EXPECT_TRUE(is_ipv6("::1"));
  // inet_pton would stop at the NUL (the module_address fuzzer's finding).
  EXPECT_FALSE(is_ipv6(std::string_view("::1\0junk", 8)));
  EXPECT_TRUE(is_ipv6("fe80::1:2"));
  EXPECT_TRUE(is_ipv6("2001:db8::8a2e:370:7334"));
  EXPECT_TRUE(is_ipv6("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_ipv6("[::1]"));
  EXPECT_FALSE(is_ipv6("1:2:3"));
  EXPECT_FALSE(is_ipv6("10.0.0.1"));
  EXPECT_FALSE(is_ipv6(""));
}

TEST(HostSyntax, DnsNamesFollowRfc1123) {
  EXPECT_TRUE(is_dns_name("localhost"));
  EXPECT_TRUE(is_dns_name("build.example.com"));
  EXPECT_TRUE(is_dns_name("Build-1.Example.COM"));
  EXPECT_TRUE(is_dns_name("9host"));
  EXPECT_TRUE(is_dns_name(std::string(63, 'a')));
  EXPECT_FALSE(is_dns_name(std::string(64, 'a')));
  EXPECT_FALSE(is_dns_name("-host"));
  EXPECT_FALSE(is_dns_name("host-"));
  EXPECT_FALSE(is_dns_name("envd_buildkitd"));
  EXPECT_FALSE(is_dns_name("a..b"));
  EXPECT_FALSE(is_dns_name("host."));
  EXPECT_FALSE(is_dns_name("1.2.3.999"));  // all-numeric last label
  EXPECT_FALSE(is_dns_name(""));
}

TEST(ParseHostPort, AcceptsTheThreeHostKinds) {
  auto v4 = parse_host_port("10.0.0.5:8888");
  ASSERT_TRUE(v4) << v4.error().message();
  EXPECT_EQ(v4->host, "10.0.0.5");
  EXPECT_EQ(v4->port, 8888);
  EXPECT_EQ(v4->kind, HostKind::ipv4);
  EXPECT_EQ(v4->to_string(), "10.0.0.5:8888");

  auto v6 = parse_host_port("[::1]:1234");
  ASSERT_TRUE(v6) << v6.error().message();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->kind, HostKind::ipv6);
  EXPECT_EQ(v6->to_string(), "[::1]:1234");

  auto dns = parse_host_port("Build.Example.com:65535");
  ASSERT_TRUE(dns) << dns.error().message();
  EXPECT_EQ(dns->host, "build.example.com");
  EXPECT_EQ(dns->port, 65535);
  EXPECT_EQ(dns->kind, HostKind::dns);
}

TEST(ParseHostPort, RejectsWithTheReason) {
  EXPECT_EQ(error_of(parse_host_port("")), "the address is empty");
  EXPECT_EQ(error_of(parse_host_port("10.0.0.5")), "the port is missing");
  EXPECT_EQ(error_of(parse_host_port("10.0.0.5:")), "the port is missing");
  EXPECT_EQ(error_of(parse_host_port(":8888")), "the host is missing");
  EXPECT_EQ(error_of(parse_host_port("h:0")), "port '0' is not a number from 1 to 65535");
  EXPECT_EQ(error_of(parse_host_port("h:65536")), "port '65536' is not a number from 1 to 65535");
  EXPECT_EQ(error_of(parse_host_port("h:80x")), "port '80x' is not a number from 1 to 65535");
  EXPECT_EQ(error_of(parse_host_port("h:-1")), "port '-1' is not a number from 1 to 65535");
  EXPECT_EQ(error_of(parse_host_port("::1:8888")),
            "IPv6 host must be in brackets, e.g. [::1]:8888");
  EXPECT_EQ(error_of(parse_host_port("[::1]")), "the port is missing");
  EXPECT_EQ(error_of(parse_host_port("[::1:80")), "'[::1:80' opens '[' without a closing ']'");
  EXPECT_EQ(error_of(parse_host_port("[10.0.0.1]:80")),
            "'10.0.0.1' in brackets is not an IPv6 address");
  EXPECT_EQ(error_of(parse_host_port("[::1]x:80")), "unexpected 'x:80' after the IPv6 address");
  EXPECT_EQ(error_of(parse_host_port("bad_host:80")),
            "host 'bad_host' is not an IPv4 address, a bracketed IPv6 address or a DNS name");
  EXPECT_EQ(error_of(parse_host_port("1.2.3.256:80")),
            "host '1.2.3.256' is not an IPv4 address, a bracketed IPv6 address or a DNS name");
  EXPECT_FALSE(parse_host_port("tcp://h:80"));  // a scheme is the caller's business
}

TEST(ParseQuery, DecodesInOrder) {
  auto params = parse_query("namespace=ci&container=build%20kit&context=a%3Db");
  ASSERT_TRUE(params) << params.error().message();
  QueryParams expected{{"namespace", "ci"}, {"container", "build kit"}, {"context", "a=b"}};
  EXPECT_EQ(*params, expected);

  auto empty = parse_query("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());

  auto empty_value = parse_query("k=");
  ASSERT_TRUE(empty_value);
  EXPECT_EQ((*empty_value)[0].second, "");
}

TEST(ParseQuery, RejectsMalformedParameters) {
  EXPECT_EQ(error_of(parse_query("a=1&&b=2")), "query 'a=1&&b=2' has an empty parameter");
  EXPECT_EQ(error_of(parse_query("a=1&")), "query 'a=1&' has an empty parameter");
  EXPECT_EQ(error_of(parse_query("flag")), "parameter 'flag' has no value (expected key=value)");
  EXPECT_EQ(error_of(parse_query("=v")), "parameter '=v' has no name");
  EXPECT_EQ(error_of(parse_query("a=1&a=2")), "parameter 'a' is given twice");
  EXPECT_EQ(error_of(parse_query("a=%zz")),
            "'%zz' in '%zz' is not a valid percent-escape (expected %XX)");
  EXPECT_EQ(error_of(parse_query("a=%4")),
            "'%4' in '%4' is not a valid percent-escape (expected %XX)");
  EXPECT_EQ(error_of(parse_query("a=%0a")), "'%0a' encodes a control character");
  EXPECT_EQ(error_of(parse_query("a=b c")), "query 'a=b c' contains a space or control character");
}

TEST(FormatQuery, RoundTripsThroughParseQuery) {
  QueryParams params{{"context", "arn:aws:eks:eu-west-1:1:cluster/x"},
                     {"odd", "a&b=c%d#e+f g?h"},
                     {"user", "me@cluster"}};
  std::string text = format_query(params);
  EXPECT_EQ(text,
            "context=arn:aws:eks:eu-west-1:1:cluster/x&odd=a%26b%3Dc%25d%23e%2Bf%20g%3Fh&"
            "user=me@cluster");
  auto parsed = parse_query(text);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(*parsed, params);
  EXPECT_EQ(format_query({}), "");
}

TEST(QueryHelpers, FindAndCheckKeys) {
  QueryParams params{{"namespace", "ci"}, {"context", "kind"}};
  ASSERT_NE(find_query_param(params, "context"), nullptr);
  EXPECT_EQ(*find_query_param(params, "context"), "kind");
  EXPECT_EQ(find_query_param(params, "container"), nullptr);

  EXPECT_TRUE(check_query_keys(params, {"context", "namespace", "container"}));
  auto status = check_query_keys(params, {"context"});
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), Errc::invalid_argument);
  EXPECT_EQ(status.error().message(), "unknown parameter 'namespace' (allowed: context)");
}

TEST(ParseUrl, HttpWithPortPathAndQuery) {
  auto url = parse_url("HTTP://LocalHost:8080/api/v1?x=1&y=a%20b");
  ASSERT_TRUE(url) << url.error().message();
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->host, "localhost");
  ASSERT_TRUE(url->port.has_value());
  EXPECT_EQ(*url->port, 8080);
  EXPECT_EQ(url->path, "/api/v1");
  EXPECT_EQ(url->query, (QueryParams{{"x", "1"}, {"y", "a b"}}));
  EXPECT_EQ(url->user, "");
  EXPECT_EQ(url->to_string(), "http://localhost:8080/api/v1?x=1&y=a%20b");
}

TEST(ParseUrl, OptionalPortUserAndIpv6) {
  auto ssh = parse_url("ssh://me@build.example.com");
  ASSERT_TRUE(ssh) << ssh.error().message();
  EXPECT_EQ(ssh->user, "me");
  EXPECT_EQ(ssh->host, "build.example.com");
  EXPECT_FALSE(ssh->port.has_value());
  EXPECT_EQ(ssh->path, "");
  EXPECT_EQ(ssh->to_string(), "ssh://me@build.example.com");

  auto v6 = parse_url("tcp://[2001:DB8::1]:2376");
  ASSERT_TRUE(v6) << v6.error().message();
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->to_string(), "tcp://[2001:db8::1]:2376");
}

TEST(ParseUrl, UnixSocketPath) {
  auto url = parse_url("unix:///run/buildkit/buildkitd.sock");
  ASSERT_TRUE(url) << url.error().message();
  EXPECT_EQ(url->scheme, "unix");
  EXPECT_EQ(url->host, "");
  EXPECT_EQ(url->path, "/run/buildkit/buildkitd.sock");
  EXPECT_EQ(url->to_string(), "unix:///run/buildkit/buildkitd.sock");

  EXPECT_EQ(error_of(parse_url("unix://")), "the unix socket path is missing");
  EXPECT_EQ(error_of(parse_url("unix://run/x.sock")),
            "unix socket path 'run/x.sock' must be absolute (three slashes: "
            "unix:///run/x.sock)");
}

TEST(ParseUrl, RejectsWithTheReason) {
  EXPECT_EQ(error_of(parse_url("localhost:2222")), "the scheme is missing");
  EXPECT_EQ(error_of(parse_url("")), "the scheme is missing");
  EXPECT_EQ(error_of(parse_url("1http://h")), "scheme '1http' is not a valid URL scheme");
  EXPECT_EQ(error_of(parse_url("://h")), "scheme '' is not a valid URL scheme");
  EXPECT_EQ(error_of(parse_url("http://")), "the host is missing");
  EXPECT_EQ(error_of(parse_url("http:///path")), "the host is missing");
  EXPECT_EQ(error_of(parse_url("http://h:99999")), "port '99999' is not a number from 1 to 65535");
  EXPECT_EQ(error_of(parse_url("http://h:")), "the port is missing");
  EXPECT_EQ(error_of(parse_url("http://h/#top")), "a fragment ('#') is not allowed");
  EXPECT_EQ(error_of(parse_url("http://me:secret@h")), "a password in the address is not allowed");
  EXPECT_EQ(error_of(parse_url("http://@h")), "the user name before '@' is empty");
  EXPECT_EQ(error_of(parse_url("http://h/a b")), "the URL contains a space or control character");
  EXPECT_EQ(error_of(parse_url("http://h?a")), "parameter 'a' has no value (expected key=value)");
}

TEST(ParseNameWithQuery, SplitsAtTheFirstQuestionMark) {
  auto plain = parse_name_with_query("envd_buildkitd");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->name, "envd_buildkitd");
  EXPECT_TRUE(plain->query.empty());
  EXPECT_EQ(plain->to_string(), "envd_buildkitd");

  auto with = parse_name_with_query("buildkitd-0?namespace=ci&context=kind-kind");
  ASSERT_TRUE(with) << with.error().message();
  EXPECT_EQ(with->name, "buildkitd-0");
  EXPECT_EQ(with->query, (QueryParams{{"namespace", "ci"}, {"context", "kind-kind"}}));
  EXPECT_EQ(with->to_string(), "buildkitd-0?namespace=ci&context=kind-kind");

  auto trailing = parse_name_with_query("pod?");
  ASSERT_TRUE(trailing);
  EXPECT_EQ(trailing->to_string(), "pod");

  EXPECT_EQ(error_of(parse_name_with_query("pod?ns")),
            "parameter 'ns' has no value (expected key=value)");
  EXPECT_EQ(error_of(parse_name_with_query("pod#x")), "a fragment ('#') is not allowed");
}

TEST(SchemeOf, LowerCasedTextBeforeTheSeparator) {
  EXPECT_EQ(scheme_of("HTTP://h"), "http");
  EXPECT_EQ(scheme_of("npipe:////./pipe/x"), "npipe");
  EXPECT_EQ(scheme_of("localhost:2222"), "");
  EXPECT_EQ(scheme_of("://h"), "");
}

TEST(StripOptionalScheme, AcceptsTheSchemeOrNoneButNoOther) {
  auto with = strip_optional_scheme("tcp://h:1", "tcp");
  ASSERT_TRUE(with);
  EXPECT_EQ(*with, "h:1");
  auto without = strip_optional_scheme("h:1", "tcp");
  ASSERT_TRUE(without);
  EXPECT_EQ(*without, "h:1");
  auto other = strip_optional_scheme("HTTP://h:1", "tcp");
  ASSERT_FALSE(other);
  EXPECT_EQ(error_of(other), "scheme 'http://' is not accepted (only tcp:// or none)");
  EXPECT_EQ(error_of(strip_optional_scheme("tcp://tcp://h:1", "tcp")),
            "the address has two schemes ('tcp://tcp://')");
  EXPECT_EQ(error_of(strip_optional_scheme("tcp://unix://h", "tcp")),
            "the address has two schemes ('tcp://unix://')");
}

TEST(AddressError, OneWordingForEveryDriver) {
  Error error = address_error("tcp builder address", "10.0.0.5", "the port is missing",
                              "host:port, e.g. 10.0.0.5:8888");
  EXPECT_EQ(error.code(), Errc::invalid_argument);
  EXPECT_EQ(error.message(),
            "tcp builder address '10.0.0.5' is invalid: the port is missing; expected host:port, "
            "e.g. 10.0.0.5:8888");
  EXPECT_EQ(address_error("x address", "y", "", "z").message(),
            "x address 'y' is invalid: expected z");
}

TEST(StripScheme, RemovesOnlyTheGivenScheme) {
  EXPECT_EQ(strip_scheme("tcp://h:1", "tcp"), "h:1");
  EXPECT_EQ(strip_scheme("TCP://h:1", "tcp"), "h:1");
  EXPECT_EQ(strip_scheme("h:1", "tcp"), "h:1");
  EXPECT_EQ(strip_scheme("http://h:1", "tcp"), "http://h:1");
  EXPECT_EQ(strip_scheme("tcp:/h", "tcp"), "tcp:/h");
  EXPECT_EQ(strip_scheme("tcp://", "tcp"), "");
}

// A password the user typed is not repeated in the message that refuses it.
TEST(AddressError, APasswordIsNotRepeated) {
  EXPECT_EQ(redact_password("http://u:secret@127.0.0.1:1/x"), "http://u:xxxxx@127.0.0.1:1/x");
  EXPECT_EQ(redact_password("u:secret@h:1"), "u:xxxxx@h:1");
  EXPECT_EQ(redact_password("ssh://user@host"), "ssh://user@host");
  // A password with '/', '?' or '#' (not percent-encoded) is hidden whole.
  EXPECT_EQ(redact_password("http://me:s3/cret@127.0.0.1:1"), "http://me:xxxxx@127.0.0.1:1");
  EXPECT_EQ(redact_password("http://me:s3?c#ret@h:1/p"), "http://me:xxxxx@h:1/p");
  // So is what looks like one in a path: saying less is the safe side.
  EXPECT_EQ(redact_password("tcp://h:1/a@b"), "tcp://h:xxxxx@b");
  EXPECT_EQ(redact_password("ssh://user@host:22"), "ssh://user@host:22");
  EXPECT_EQ(redact_password("h:1"), "h:1");
  // A huge value is quoted in part: one line of a few hundred bytes.
  const std::string huge = "tcp://" + std::string(100000, 'a');
  auto long_error = address_error("tcp builder address", huge, "bad", "host:port");
  EXPECT_LT(long_error.message().size(), 400U);
  EXPECT_NE(long_error.message().find("aaa...' is invalid: bad; expected host:port"),
            std::string::npos)
      << long_error.message();
  auto long_host = parse_host_port(std::string(100000, 'a') + ":1");
  ASSERT_FALSE(long_host);
  EXPECT_LT(long_host.error().message().size(), 400U);
  auto e = address_error("tcp builder address", "tcp://u:secret@h:1", "bad", "host:port");
  EXPECT_EQ(e.message().find("secret"), std::string::npos) << e.message();
  auto parsed = parse_host_port("u:secret@127.0.0.1:1");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().message(), "a user or password in the address is not allowed");
}

}  // namespace
}  // namespace envd::sdk
