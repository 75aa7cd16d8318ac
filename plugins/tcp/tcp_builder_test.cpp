#include "tcp_builder.hpp"

#include <gtest/gtest.h>

#include "testing/address_expectations.hpp"

namespace envd::plugins {
namespace {

constexpr auto normalized = test_support::normalized<TcpBuilder>;
constexpr auto rejected = test_support::rejected<TcpBuilder>;

constexpr const char* kExpected =
    "; expected host:port (IPv4, [IPv6] or DNS name), e.g. 10.0.0.5:8888";

TEST(TcpBuilder, AcceptsHostPortInEveryHostForm) {
  EXPECT_EQ(normalized("10.0.0.5:8888"), "10.0.0.5:8888");
  EXPECT_EQ(normalized("[::1]:1234"), "[::1]:1234");
  EXPECT_EQ(normalized("[2001:DB8::1]:1234"), "[2001:db8::1]:1234");
  EXPECT_EQ(normalized("buildkitd.ci.svc:1234"), "buildkitd.ci.svc:1234");
  EXPECT_EQ(normalized("localhost:30003"), "localhost:30003");
}

TEST(TcpBuilder, StripsTheTcpSchemeAndNormalisesCase) {
  EXPECT_EQ(normalized("tcp://10.0.0.5:8888"), "10.0.0.5:8888");
  EXPECT_EQ(normalized("TCP://Build.Example.COM:8888"), "build.example.com:8888");
  EXPECT_EQ(normalized("tcp://[::1]:8888"), "[::1]:8888");
}

TEST(TcpBuilder, EmptyAddressSaysAnAddressIsRequired) {
  EXPECT_EQ(rejected(""),
            "the tcp builder has no default address: pass --builder-address host:port, e.g. "
            "--builder-address 10.0.0.5:8888");
}

TEST(TcpBuilder, RejectsOtherFormsNamingTheExpectedOne) {
  EXPECT_EQ(rejected("x"),
            std::string("tcp builder address 'x' is invalid: the port is missing") + kExpected);
  EXPECT_EQ(rejected("envd_buildkitd"),
            std::string("tcp builder address 'envd_buildkitd' is invalid: host 'envd_buildkitd' "
                        "is not an IPv4 address, a bracketed IPv6 address or a DNS name") +
                kExpected);
  EXPECT_EQ(rejected("10.0.0.5:99999"),
            std::string("tcp builder address '10.0.0.5:99999' is invalid: port '99999' is not a "
                        "number from 1 to 65535") +
                kExpected);
  EXPECT_EQ(rejected("http://10.0.0.5:8888"),
            std::string("tcp builder address 'http://10.0.0.5:8888' is invalid: scheme 'http://' "
                        "is not accepted (only tcp:// or none)") +
                kExpected);
  EXPECT_EQ(
      rejected("tcp://"),
      std::string("tcp builder address 'tcp://' is invalid: the address is empty") + kExpected);
  EXPECT_EQ(rejected("::1:8888"),
            std::string("tcp builder address '::1:8888' is invalid: IPv6 host must be in "
                        "brackets, e.g. [::1]:8888") +
                kExpected);
  EXPECT_EQ(rejected("bad_host:80"),
            std::string("tcp builder address 'bad_host:80' is invalid: host 'bad_host' is not an "
                        "IPv4 address, a bracketed IPv6 address or a DNS name") +
                kExpected);
  EXPECT_EQ(rejected("tcp://h:1/path"),
            std::string("tcp builder address 'tcp://h:1/path' is invalid: port '1/path' is not a "
                        "number from 1 to 65535") +
                kExpected);
  EXPECT_EQ(rejected(" h:1"),
            std::string("tcp builder address ' h:1' is invalid: host ' h' is not an IPv4 "
                        "address, a bracketed IPv6 address or a DNS name") +
                kExpected);
}

}  // namespace
}  // namespace envd::plugins
