// envd's own modules, loaded for real from the build tree: each is
// discovered as usable, and every verb of a later issue says plainly that it
// is not available yet instead of pretending to work.
#include <gtest/gtest.h>

#include <string>

#include "plugin/registry.hpp"

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

// Driver errors read "<kind> '<type>': the '<type>' <kind> cannot <verb> yet: ...".
void expect_not_available(const Status& st, const std::string& kind, const std::string& type,
                          const std::string& verb) {
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Errc::unsupported);
  EXPECT_EQ(st.error().message(), kind + " '" + type + "': the '" + type + "' " + kind +
                                      " cannot " + verb + " yet: this version does not provide it");
}

template <typename T>
Status status_of(const Result<T>& r) {
  if (r) return {};
  return r.error();
}

TEST_F(RealModules, AllAreUsable) {
  EXPECT_EQ(
      registry_->types(Kind::builder),
      (std::vector<std::string>{"docker-container", "kube-pod", "moby-worker", "tcp", "unix"}));
  EXPECT_EQ(registry_->types(Kind::runner), (std::vector<std::string>{"docker", "envd-server"}));
  for (const auto& m : registry_->modules()) EXPECT_TRUE(m.ok) << m.path << ": " << m.reason;
}

TEST_F(RealModules, BuilderVerbsAreNotAvailableYet) {
  for (const char* type : {"kube-pod"}) {
    auto driver = registry_->builder(type);
    ASSERT_TRUE(driver) << driver.error().message();
    DriverRequest request;
    request.context = "t";
    expect_not_available(status_of(driver->dial(request)), "builder", type, "dial");
    expect_not_available(status_of(driver->status(request)), "builder", type, "report status");
    expect_not_available(status_of(driver->bootstrap(request)), "builder", type, "bootstrap");
    expect_not_available(driver->stop(request), "builder", type, "stop");
    expect_not_available(driver->remove(request), "builder", type, "remove");
  }
}

TEST_F(RealModules, RunnerVerbsAreNotAvailableYet) {
  for (const char* type : {"docker", "envd-server"}) {
    auto driver = registry_->runner(type);
    ASSERT_TRUE(driver) << driver.error().message();
    DriverRequest request;
    expect_not_available(status_of(driver->create(request)), "runner", type, "create environments");
    expect_not_available(status_of(driver->list(request)), "runner", type, "list environments");
    expect_not_available(status_of(driver->inspect(request)), "runner", type,
                         "inspect environments");
    expect_not_available(driver->remove(request), "runner", type, "remove environments");
  }
}

TEST_F(RealModules, OptionsAreRejectedUntilADriverDeclaresSome) {
  auto unix_builder = registry_->builder("unix");
  ASSERT_TRUE(unix_builder);
  auto options = unix_builder->normalize_options({{"image", "x"}});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().code(), Errc::invalid_argument);
  EXPECT_EQ(options.error().message(),
            "builder 'unix': unknown option 'image' for the 'unix' builder (it takes no options)");
}

// The remote builders connect to daemons that someone else runs: the tcp
// module declares its TLS files, and neither manages a daemon's lifecycle.
TEST_F(RealModules, RemoteBuildersDeclareTheirFilesAndManageNoDaemon) {
  auto tcp = registry_->builder("tcp");
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->file_options(), (std::vector<std::string>{"tls-ca", "tls-cert", "tls-key"}));
  auto options = tcp->normalize_options({{"image", "x"}});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().message(),
            "builder 'tcp': unknown option 'image' for the tcp builder (allowed: tls-ca, "
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
