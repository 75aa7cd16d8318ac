#include "docker_container_builder.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <optional>

#include "testing/address_expectations.hpp"

namespace envd::plugins {
namespace {

constexpr auto normalized = test_support::normalized<DockerContainerBuilder>;
constexpr auto rejected = test_support::rejected<DockerContainerBuilder>;

std::string message(const std::string& address, const std::string& reason) {
  return "docker-container builder address '" + address + "' is invalid: " + reason +
         "; expected <container>[?context=<docker context>], e.g. envd_buildkitd or "
         "envd_buildkitd?context=remote";
}

TEST(DockerContainerBuilder, EmptyMeansTheDefaultContainer) {
  EXPECT_EQ(normalized(""), "envd_buildkitd");
  EXPECT_EQ(normalized("docker-container://"), "envd_buildkitd");
  EXPECT_EQ(normalized("?context=remote"), "envd_buildkitd?context=remote");
}

TEST(DockerContainerBuilder, AcceptsDockerContainerNames) {
  EXPECT_EQ(normalized("envd_buildkitd"), "envd_buildkitd");
  EXPECT_EQ(normalized("my-builder.v2"), "my-builder.v2");
  EXPECT_EQ(normalized("B1"), "B1");
  EXPECT_EQ(normalized("0_x"), "0_x");
}

TEST(DockerContainerBuilder, StripsThePrefixAndKeepsTheContext) {
  EXPECT_EQ(normalized("docker-container://envd_buildkitd"), "envd_buildkitd");
  EXPECT_EQ(normalized("Docker-Container://bk?context=remote"), "bk?context=remote");
  EXPECT_EQ(normalized("bk?context=my.ctx+1"), "bk?context=my.ctx%2B1");
  EXPECT_EQ(normalized("bk?context=my.ctx%2B1"), "bk?context=my.ctx%2B1");
  EXPECT_EQ(normalized("bk?"), "bk");
}

TEST(DockerContainerBuilder, RejectsNamesOutsideDockersRule) {
  const std::string rule = "' does not follow Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+";
  EXPECT_EQ(rejected("a"), message("a", "container name 'a" + rule));
  EXPECT_EQ(rejected("_buildkitd"), message("_buildkitd", "container name '_buildkitd" + rule));
  EXPECT_EQ(rejected("-x"), message("-x", "container name '-x" + rule));
  EXPECT_EQ(rejected("build kit"), message("build kit", "container name 'build kit" + rule));
  EXPECT_EQ(rejected("a/b"), message("a/b", "container name 'a/b" + rule));
}

TEST(DockerContainerBuilder, RejectsOtherParametersAndBadContexts) {
  EXPECT_EQ(rejected("bk?namespace=ci"),
            message("bk?namespace=ci", "unknown parameter 'namespace' (allowed: context)"));
  EXPECT_EQ(rejected("bk?context=a&context=b"),
            message("bk?context=a&context=b", "parameter 'context' is given twice"));
  EXPECT_EQ(rejected("bk?context="), message("bk?context=",
                                             "docker context '' does not follow Docker's rule "
                                             "[a-zA-Z0-9][a-zA-Z0-9_.+-]+"));
  EXPECT_EQ(rejected("bk?context=-x"), message("bk?context=-x",
                                               "docker context '-x' does not follow Docker's rule "
                                               "[a-zA-Z0-9][a-zA-Z0-9_.+-]+"));
  EXPECT_EQ(rejected("bk?context"),
            message("bk?context", "parameter 'context' has no value (expected key=value)"));
}

TEST(DockerContainerBuilder, RejectsOtherSchemes) {
  EXPECT_EQ(rejected("kube-pod://bk"),
            message("kube-pod://bk",
                    "scheme 'kube-pod://' is not accepted (only docker-container:// or none)"));
  EXPECT_EQ(rejected("tcp://10.0.0.5:8888"),
            message("tcp://10.0.0.5:8888",
                    "scheme 'tcp://' is not accepted (only docker-container:// or none)"));
}

// The verbs fail before any engine call when the request cannot be served.
class DockerContainerVerbs : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* old = std::getenv("DOCKER_HOST");
    if (old != nullptr) saved_ = old;
    ::setenv("DOCKER_HOST", "unix:///nonexistent/envd-test/docker.sock", 1);
    request_.context = "t";
    request_.address = "envd_buildkitd";
    request_.data_dir = ::testing::TempDir();
    request_.timeout = std::chrono::milliseconds(2000);
  }
  void TearDown() override {
    if (saved_) {
      ::setenv("DOCKER_HOST", saved_->c_str(), 1);
    } else {
      ::unsetenv("DOCKER_HOST");
    }
  }
  std::optional<std::string> saved_;
  sdk::Request request_;
};

TEST_F(DockerContainerVerbs, AnUnreachableEngineIsAClearError) {
  DockerContainerBuilder driver;
  auto dial = driver.dial(request_);
  ASSERT_FALSE(dial);
  EXPECT_EQ(dial.error().code(), Errc::unavailable);
  EXPECT_NE(dial.error().message().find(
                "cannot connect to the Docker Engine at unix:///nonexistent/envd-test/docker.sock"),
            std::string::npos)
      << dial.error().message();
  EXPECT_FALSE(driver.status(request_));
  EXPECT_FALSE(driver.stop(request_));
}

TEST_F(DockerContainerVerbs, ADockerContextIsRefused) {
  request_.address = "envd_buildkitd?context=remote";
  auto status = DockerContainerBuilder().status(request_);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), Errc::unsupported);
  EXPECT_EQ(status.error().message(),
            "docker-container builder address 'envd_buildkitd?context=remote' names the docker "
            "context 'remote', which envd does not support: it reaches the Docker Engine that "
            "DOCKER_HOST names; set DOCKER_HOST instead and drop '?context=remote' from the "
            "address");
}

TEST_F(DockerContainerVerbs, AMissingStoredConfigIsNamed) {
  request_.options = {{"config", "/nonexistent/files/config"}};
  auto bootstrap = DockerContainerBuilder().bootstrap(request_);
  ASSERT_FALSE(bootstrap);
  EXPECT_EQ(bootstrap.error().code(), Errc::not_found);
  EXPECT_EQ(bootstrap.error().message(),
            "cannot read the stored buildkitd config '/nonexistent/files/config' (set it again "
            "with envd context update --buildkitd-config FILE)");
}

}  // namespace
}  // namespace envd::plugins
