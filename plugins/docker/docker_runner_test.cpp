#include "docker_runner.hpp"

#include <gtest/gtest.h>

#include "testing/address_expectations.hpp"

namespace envd::plugins {
namespace {

constexpr auto normalized = test_support::normalized<DockerRunner>;
constexpr auto rejected = test_support::rejected<DockerRunner>;

std::string message(const std::string& address, const std::string& reason) {
  return "docker runner address '" + address + "' is invalid: " + reason +
         "; expected a Docker Engine endpoint: unix:///path/to/docker.sock, tcp://host:port or "
         "ssh://[user@]host[:port]";
}

TEST(DockerRunner, EmptyStaysEmpty) { EXPECT_EQ(normalized(""), ""); }

TEST(DockerRunner, AcceptsTheThreeEndpointKinds) {
  EXPECT_EQ(normalized("unix:///var/run/docker.sock"), "unix:///var/run/docker.sock");
  EXPECT_EQ(normalized("tcp://10.0.0.5:2375"), "tcp://10.0.0.5:2375");
  EXPECT_EQ(normalized("tcp://[::1]:2376"), "tcp://[::1]:2376");
  EXPECT_EQ(normalized("ssh://me@build.example.com"), "ssh://me@build.example.com");
  EXPECT_EQ(normalized("ssh://build.example.com:2222"), "ssh://build.example.com:2222");
}

TEST(DockerRunner, Normalises) {
  EXPECT_EQ(normalized("TCP://Remote.Example.com:2375/"), "tcp://remote.example.com:2375");
  EXPECT_EQ(normalized("SSH://me@Host"), "ssh://me@host");
}

TEST(DockerRunner, RejectsOtherFormsListingTheAcceptedOnes) {
  EXPECT_EQ(rejected("remote:2375"), message("remote:2375", "the scheme is missing"));
  EXPECT_EQ(rejected("/var/run/docker.sock"),
            message("/var/run/docker.sock", "the scheme is missing"));
  EXPECT_EQ(rejected("http://remote:2375"),
            message("http://remote:2375", "scheme 'http://' is not a Docker Engine endpoint"));
  EXPECT_EQ(rejected("npipe:////./pipe/docker_engine"),
            message("npipe:////./pipe/docker_engine",
                    "scheme 'npipe://' is not a Docker Engine endpoint"));
  EXPECT_EQ(rejected("tcp://remote"), message("tcp://remote", "the port is missing"));
  EXPECT_EQ(rejected("tcp://me@remote:2375"),
            message("tcp://me@remote:2375", "a user name is not accepted for tcp://"));
  EXPECT_EQ(rejected("tcp://remote:2375/v1.43"),
            message("tcp://remote:2375/v1.43", "path '/v1.43' is not accepted"));
  EXPECT_EQ(rejected("ssh://remote?x=1"),
            message("ssh://remote?x=1", "query parameters are not accepted"));
  EXPECT_EQ(rejected("unix://var/run/docker.sock"),
            message("unix://var/run/docker.sock",
                    "unix socket path 'var/run/docker.sock' must be absolute (three "
                    "slashes: unix:///var/run/docker.sock)"));
  // The password is not repeated in the message.
  EXPECT_EQ(rejected("ssh://me:pw@remote"),
            message("ssh://me:xxxxx@remote", "a password in the address is not allowed"));
}

}  // namespace
}  // namespace envd::plugins
