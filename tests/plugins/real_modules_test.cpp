// envd's own modules, loaded for real from the build tree: each is
// discovered as usable, and fails plainly where it cannot work here (the
// runners' verbs: an Engine that is down, a server not logged in to).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <string>

#include "plugin/registry.hpp"
#include "plugins/built_modules.hpp"

namespace envd::plugin {
namespace {

class RealModules : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = new Registry(Registry::discover({ENVD_BUILD_PLUGIN_DIR}, {}));
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  static Registry* registry_;
};

Registry* RealModules::registry_ = nullptr;

template <typename T>
Status status_of(const Result<T>& r) {
  if (r) return {};
  return r.error();
}

// Exactly the modules this build makes (envd_add_plugin's record).
TEST_F(RealModules, AllAreUsable) {
  EXPECT_EQ(registry_->types(Kind::builder), test::built_builders());
  EXPECT_EQ(registry_->types(Kind::runner), test::built_runners());
  for (const auto& m : registry_->modules()) EXPECT_TRUE(m.ok) << m.path << ": " << m.reason;
}

// kube-pod dials through kubectl; here: it manages no daemon, and a missing
// kubectl is named.
TEST_F(RealModules, KubePodManagesNoDaemonAndNamesAMissingKubectl) {
  ENVD_REQUIRE_MODULES("kube-pod builder");
  auto driver = registry_->builder("kube-pod");
  ASSERT_TRUE(driver) << driver.error().message();
  DriverRequest request;
  request.context = "t";
  request.address = "buildkitd-0?namespace=ci";
  ::setenv("ENVD_KUBECTL", "/nonexistent/envd-test/kubectl", 1);
  auto dialled = driver->dial(request);
  ::unsetenv("ENVD_KUBECTL");
  ASSERT_FALSE(dialled);
  EXPECT_EQ(dialled.error().code(), Errc::not_found);
  EXPECT_EQ(dialled.error().message(),
            "builder 'kube-pod': ENVD_KUBECTL is '/nonexistent/envd-test/kubectl', which does "
            "not exist or cannot be run (point it at kubectl, or unset it to use the kubectl on "
            "PATH)");
  auto boot = driver->bootstrap(request);
  ASSERT_FALSE(boot);
  EXPECT_EQ(boot.error().code(), Errc::unsupported);
  EXPECT_NE(boot.error().message().find("deploy buildkitd with kubectl"), std::string::npos)
      << boot.error().message();
}

// The envd-server runner does its verbs (tests/envd-server drives them
// against a loopback server); here: without `envd login` it says to log in
// before any server is contacted.
TEST_F(RealModules, EnvdServerRunnerAsksForALogin) {
  ENVD_REQUIRE_MODULES("envd-server runner");
  auto driver = registry_->runner("envd-server");
  ASSERT_TRUE(driver) << driver.error().message();
  DriverRequest request;
  request.context = "t";
  request.address = "http://127.0.0.1:1";
  auto listed = driver->list(request);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code(), Errc::permission);
  EXPECT_EQ(listed.error().message(),
            "runner 'envd-server': not logged in to the envd server at http://127.0.0.1:1 in "
            "context 't'; run envd login");
}

// The docker runner does its verbs (tests/runners drives them against a real
// Engine); here: an Engine that is not there is named, and a request without
// what the verb needs is refused before any Engine is contacted.
TEST_F(RealModules, DockerRunnerNamesAnEngineThatIsDown) {
  ENVD_REQUIRE_MODULES("docker runner");
  auto driver = registry_->runner("docker");
  ASSERT_TRUE(driver) << driver.error().message();
  DriverRequest request;
  request.address = "unix:///nonexistent/envd-test/docker.sock";
  request.timeout = std::chrono::seconds(5);
  auto listed = driver->list(request);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code(), Errc::unavailable);
  EXPECT_EQ(
      listed.error().message().rfind("runner 'docker': cannot connect to the Docker Engine at "
                                     "unix:///nonexistent/envd-test/docker.sock",
                                     0),
      0U)
      << listed.error().message();

  request.args_json = R"({"spec":{"image":"envd-test/busybox:latest"}})";
  auto created = driver->create(request);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code(), Errc::unavailable);

  request.args_json = "{}";
  auto inspected = driver->inspect(request);
  ASSERT_FALSE(inspected);
  EXPECT_EQ(inspected.error().code(), Errc::invalid_argument);
  EXPECT_EQ(inspected.error().message(), "runner 'docker': no environment name given");
  request.args_json = R"({"name":"../x"})";
  Status removed = driver->remove(request);
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().message(),
            "runner 'docker': environment name '../x' is invalid: it must match "
            "[a-zA-Z0-9][a-zA-Z0-9_.-]+");
  request.args_json = R"({"spec":{}})";
  created = driver->create(request);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().message(),
            "runner 'docker': invalid environment spec: image is missing");
}

TEST_F(RealModules, OptionsAreRejectedUntilADriverDeclaresSome) {
  ENVD_REQUIRE_MODULES("unix builder");
  auto unix_builder = registry_->builder("unix");
  ASSERT_TRUE(unix_builder);
  auto options = unix_builder->normalize_options({{"image", "x"}});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().code(), Errc::invalid_argument);
  EXPECT_EQ(options.error().message(),
            "builder 'unix': unknown option 'image' (it takes no options)");
}

// The remote builders connect to daemons that someone else runs: the tcp
// module declares its TLS files, and neither manages a daemon's lifecycle.
TEST_F(RealModules, RemoteBuildersDeclareTheirFilesAndManageNoDaemon) {
  ENVD_REQUIRE_MODULES("tcp builder", "unix builder");
  auto tcp = registry_->builder("tcp");
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->file_options(), (std::vector<std::string>{"tls-ca", "tls-cert", "tls-key"}));
  auto options = tcp->normalize_options({{"image", "x"}});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().message(),
            "builder 'tcp': unknown option 'image' (allowed: tls-ca, "
            "tls-cert, tls-key, tls-servername)");
  auto unix_builder = registry_->builder("unix");
  ASSERT_TRUE(unix_builder);
  EXPECT_TRUE(unix_builder->file_options().empty());
  for (const auto& driver : {*tcp, *unix_builder}) {
    DriverRequest request;
    request.context = "t";
    request.address = driver.type() == "tcp" ? "127.0.0.1:1" : "/nonexistent/buildkitd.sock";
    auto bootstrap = driver.bootstrap(request);
    ASSERT_FALSE(bootstrap);
    EXPECT_EQ(bootstrap.error().code(), Errc::unsupported);
    EXPECT_NE(bootstrap.error().message().find("connects to a buildkitd that someone else runs"),
              std::string::npos)
        << bootstrap.error().message();
    EXPECT_EQ(driver.stop(request).error().code(), Errc::unsupported);
    EXPECT_EQ(driver.remove(request).error().code(), Errc::unsupported);
  }
}

}  // namespace
}  // namespace envd::plugin
