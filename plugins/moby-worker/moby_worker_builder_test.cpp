#include "moby_worker_builder.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "testing/address_expectations.hpp"
#include "testing/fake_engine.hpp"

namespace envd::plugins {
namespace {

constexpr auto normalized = test_support::normalized<MobyWorkerBuilder>;
constexpr auto rejected = test_support::rejected<MobyWorkerBuilder>;

constexpr const char* kExpected =
    "; expected a name following Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+, e.g. envd_buildkitd "
    "(the engine comes from DOCKER_HOST)";

TEST(MobyWorkerBuilder, AcceptsANameAndDefaultsToEnvdBuildkitd) {
  EXPECT_EQ(normalized(""), "envd_buildkitd");
  EXPECT_EQ(normalized("envd_buildkitd"), "envd_buildkitd");
  EXPECT_EQ(normalized("my-worker.1"), "my-worker.1");
  EXPECT_EQ(normalized("CI_Builder"), "CI_Builder");
}

TEST(MobyWorkerBuilder, StripsTheSchemePrefix) {
  EXPECT_EQ(normalized("moby-worker://ci"), "ci");
  EXPECT_EQ(normalized("MOBY-WORKER://ci"), "ci");
  EXPECT_EQ(normalized("moby-worker://"), "envd_buildkitd");
}

TEST(MobyWorkerBuilder, RejectsNamesOutsideDockersRule) {
  EXPECT_EQ(rejected("x"),
            std::string("moby-worker builder address 'x' is invalid: name 'x' does not follow "
                        "Docker's rule") +
                kExpected);
  EXPECT_EQ(rejected("_hidden"),
            std::string("moby-worker builder address '_hidden' is invalid: name '_hidden' does "
                        "not follow Docker's rule") +
                kExpected);
  EXPECT_EQ(rejected("a/b"),
            std::string("moby-worker builder address 'a/b' is invalid: name 'a/b' does not "
                        "follow Docker's rule") +
                kExpected);
  EXPECT_EQ(rejected("ci?context=x"),
            std::string("moby-worker builder address 'ci?context=x' is invalid: name "
                        "'ci?context=x' does not follow Docker's rule") +
                kExpected);
}

TEST(MobyWorkerBuilder, RejectsOtherSchemes) {
  EXPECT_EQ(rejected("unix:///var/run/docker.sock"),
            std::string("moby-worker builder address 'unix:///var/run/docker.sock' is invalid: "
                        "scheme 'unix://' is not accepted (only moby-worker:// or none)") +
                kExpected);
}

TEST(MobyWorkerBuilder, LifecycleVerbsSayTheEngineIsNotManaged) {
  MobyWorkerBuilder builder;
  auto bootstrapped = builder.bootstrap(sdk::Request{});
  ASSERT_FALSE(bootstrapped);
  EXPECT_EQ(bootstrapped.error().code(), Errc::unsupported);
  EXPECT_EQ(bootstrapped.error().message(),
            "nothing to bootstrap: it uses the Docker Engine's own BuildKit, which envd does not "
            "manage");
  EXPECT_EQ(builder.stop(sdk::Request{}).error().code(), Errc::unsupported);
  EXPECT_EQ(builder.remove(sdk::Request{}).error().code(), Errc::unsupported);
}

TEST(MobyWorkerBuilder, AnUnreachableEngineIsUnavailable) {
  ::setenv("DOCKER_HOST", "unix:///nonexistent/envd/docker.sock", 1);
  MobyWorkerBuilder builder;
  auto transport = builder.dial(sdk::Request{});
  auto status = builder.status(sdk::Request{});
  ::unsetenv("DOCKER_HOST");
  ASSERT_FALSE(transport);
  EXPECT_EQ(transport.error().code(), Errc::unavailable);
  EXPECT_EQ(transport.error().message(),
            "cannot connect to the Docker Engine at unix:///nonexistent/envd/docker.sock: no such "
            "file or directory");
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), Errc::unavailable);
}

// Sets DOCKER_HOST to `engine` for the test's scope.
class EngineHost {
 public:
  explicit EngineHost(const sdk::testing::FakeEngine& engine) {
    ::setenv("DOCKER_HOST", engine.url().c_str(), 1);
  }
  EngineHost(const EngineHost&) = delete;
  EngineHost& operator=(const EngineHost&) = delete;
  ~EngineHost() { ::unsetenv("DOCKER_HOST"); }
};

TEST(MobyWorkerBuilder, ASessionIsAnnouncedInTheHeadersOfPostSession) {
  sdk::testing::FakeEngine engine([](int fd, const sdk::testing::Received&) {
    sdk::testing::send_all(fd,
                           "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                           "Upgrade: h2c\r\n\r\nPRI * HTTP/2.0");
  });
  EngineHost host(engine);
  sdk::SessionRequest session{
      "sid", "ctx", "key", {"/moby.filesync.v1.FileSync/DiffCopy", "/grpc.health.v1.Health/Check"}};
  auto fd = MobyWorkerBuilder().dial_session(sdk::Request{}, session);
  ASSERT_TRUE(fd) << fd.error().message();
  std::string first(14, '\0');
  EXPECT_EQ(::read(*fd, first.data(), first.size()), 14);
  EXPECT_EQ(first, "PRI * HTTP/2.0") << "what followed the 101 is left for the session";
  ::close(*fd);

  auto requests = engine.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& r = requests[0];
  EXPECT_EQ(r.head.rfind("POST /session HTTP/1.1\r\n", 0), 0u) << r.head;
  EXPECT_EQ(engine.pings(), 0) << "no version negotiation for an unversioned route";
  for (const char* line :
       {"Connection: Upgrade", "Upgrade: h2c", "X-Docker-Expose-Session-Uuid: sid",
        "X-Docker-Expose-Session-Name: ctx", "X-Docker-Expose-Session-Sharedkey: key",
        "X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy",
        "X-Docker-Expose-Session-Grpc-Method: /grpc.health.v1.Health/Check"}) {
    EXPECT_TRUE(r.has_header(line)) << line << " in\n" << r.head;
  }
}

TEST(MobyWorkerBuilder, AnEngineWithoutPostSessionIsUnsupported) {
  sdk::testing::FakeEngine engine([](int fd, const sdk::testing::Received&) {
    sdk::testing::send_all(
        fd, sdk::testing::response(404, "Not Found", R"({"message":"page not found"})"));
  });
  EngineHost host(engine);
  auto fd = MobyWorkerBuilder().dial_session(sdk::Request{},
                                             sdk::SessionRequest{"sid", "envd", "", {"/a.B/C"}});
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Errc::unsupported);
  EXPECT_EQ(fd.error().message(), "the Docker Engine has no POST /session");
}

TEST(MobyWorkerBuilder, AnUnreachableEngineFailsTheSessionDialToo) {
  ::setenv("DOCKER_HOST", "unix:///nonexistent/envd/docker.sock", 1);
  auto fd = MobyWorkerBuilder().dial_session(sdk::Request{},
                                             sdk::SessionRequest{"id", "envd", "", {"/a.B/C"}});
  ::unsetenv("DOCKER_HOST");
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Errc::unavailable) << "only a missing route means unsupported";
}

TEST(MobyWorkerBuilder, TlsSettingsThatCannotWorkFailBeforeAnyConnection) {
  // DOCKER_TLS_VERIFY without a CA file: the SDK names the file (TLS itself is
  // tested against the real engine in tests/remote/engine_tls_test.cpp).
  ::setenv("DOCKER_HOST", "tcp://127.0.0.1:1", 1);
  ::setenv("DOCKER_TLS_VERIFY", "1", 1);
  ::setenv("DOCKER_CERT_PATH", "/nonexistent/envd-test/certs", 1);
  auto transport = MobyWorkerBuilder().dial(sdk::Request{});
  ::unsetenv("DOCKER_CERT_PATH");
  ::unsetenv("DOCKER_TLS_VERIFY");
  ::unsetenv("DOCKER_HOST");
  ASSERT_FALSE(transport);
  EXPECT_EQ(transport.error().code(), Errc::not_found);
  EXPECT_EQ(
      transport.error().message(),
      "DOCKER_TLS_VERIFY is set, but the CA certificate '/nonexistent/envd-test/certs/ca.pem' "
      "does not exist (DOCKER_CERT_PATH names the directory of ca.pem, cert.pem and "
      "key.pem)");
}

}  // namespace
}  // namespace envd::plugins
