#include "envd_server_runner.hpp"

#include <gtest/gtest.h>

#include "testing/address_expectations.hpp"

namespace envd::plugins {
namespace {

constexpr auto normalized = test_support::normalized<EnvdServerRunner>;
constexpr auto rejected = test_support::rejected<EnvdServerRunner>;

std::string message(const std::string& address, const std::string& reason) {
  return "envd-server runner address '" + address + "' is invalid: " + reason +
         "; expected a URL such as http://localhost:8080 (the server's API, not its SSH port)";
}

TEST(EnvdServerRunner, EmptyStaysEmpty) { EXPECT_EQ(normalized(""), ""); }

TEST(EnvdServerRunner, AcceptsHttpAndHttpsUrls) {
  EXPECT_EQ(normalized("http://localhost:8080"), "http://localhost:8080");
  EXPECT_EQ(normalized("https://envd.example.com"), "https://envd.example.com");
  EXPECT_EQ(normalized("http://10.0.0.5:8080/envd"), "http://10.0.0.5:8080/envd");
  EXPECT_EQ(normalized("http://[::1]:8080"), "http://[::1]:8080");
}

TEST(EnvdServerRunner, Normalises) {
  EXPECT_EQ(normalized("HTTP://LocalHost:8080/"), "http://localhost:8080");
  EXPECT_EQ(normalized("https://h/prefix//"), "https://h/prefix");
}

TEST(EnvdServerRunner, AValueWithoutSchemeGetsAHint) {
  // envd-server#123: the SSH port typed where the API URL belongs.
  EXPECT_EQ(rejected("localhost:2222"), message("localhost:2222", "the scheme is missing"));
  EXPECT_EQ(rejected("envd.example.com"), message("envd.example.com", "the scheme is missing"));
}

TEST(EnvdServerRunner, RejectsOtherUrls) {
  EXPECT_EQ(rejected("tcp://localhost:8080"),
            message("tcp://localhost:8080",
                    "scheme 'tcp://' is not accepted (only http:// or https://)"));
  EXPECT_EQ(rejected("ssh://localhost:2222"),
            message("ssh://localhost:2222",
                    "scheme 'ssh://' is not accepted (only http:// or https://)"));
  EXPECT_EQ(rejected("http://localhost:8080?token=x"),
            message("http://localhost:8080?token=x", "query parameters are not accepted"));
  EXPECT_EQ(
      rejected("http://me@localhost:8080"),
      message("http://me@localhost:8080", "a user name is not accepted (log in with envd login)"));
  EXPECT_EQ(rejected("http://"), message("http://", "the host is missing"));
  EXPECT_EQ(rejected("ftp:////srv"),
            message("ftp:////srv", "scheme 'ftp://' is not accepted (only http:// or https://)"));
  EXPECT_EQ(rejected("http://localhost:0"),
            message("http://localhost:0", "port '0' is not a number from 1 to 65535"));
  EXPECT_EQ(rejected("http://localhost:8080/#x"),
            message("http://localhost:8080/#x", "a fragment ('#') is not allowed"));
}

// Option errors say what is wrong and what is allowed, without naming the
// runner: envd puts "runner 'envd-server': " before them.
TEST(EnvdServerRunner, OptionsAreCheckedAndNamed) {
  EnvdServerRunner runner;
  auto error = [&](const sdk::Options& options) {
    auto got = runner.normalize_options(options);
    return got ? std::string("accepted") : got.error().message();
  };
  EXPECT_EQ(error({{"ssh-port", "2222"}, {"runner-tls-ca", "files/runner-tls-ca"}}), "accepted");
  EXPECT_EQ(error({{"image", "x"}}), "unknown option 'image' (allowed: runner-tls-ca, ssh-port)");
  EXPECT_EQ(error({{"ssh-port", "0"}}), "ssh-port '0' is not a port number (1-65535)");
  EXPECT_EQ(error({{"runner-tls-ca", ""}}), "runner-tls-ca needs a file");
}

}  // namespace
}  // namespace envd::plugins
