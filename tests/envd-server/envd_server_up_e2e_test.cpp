// `envd up` with an envd-server context, end to end: built on the test
// Engine's BuildKit (moby-worker), pushed to the test registry (the server's
// cluster pulls from there), then the environment created on the fake
// envd-server, listed and removed, as upstream envd's flow goes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <string>

#include "cli_harness.hpp"
#include "loopback_servers.hpp"
#include "services/registry_probe.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class EnvdServerUpE2e : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    services_ = TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
  }

  std::map<std::string, std::optional<std::string>> env() const {
    return {{"DOCKER_HOST", services_.docker_host}};
  }

  TestServices services_;
};

TEST_F(EnvdServerUpE2e, BuildsPushesAndCreatesTheEnvironment) {
  FakeServer server({"--no-auth", "--running-after-ms", "300"});
  ASSERT_TRUE(server.started());
  envd_ok({"context", "create", "--name", "remote-dev", "--builder", "moby-worker", "--runner",
           "envd-server", "--runner-address", server.url(), "--use"},
          env());
  envd_ok({"login", "-u", "bob"}, env());

  fs::path dir = home() / "project";
  write_text(dir / "Dockerfile", "FROM envd-test/busybox:latest\nRUN echo pushed > /p.txt\n");
  const std::string repository = "envd-e2e/up-server";
  const std::string tag = std::to_string(::getpid());
  const std::string image = services_.registry + "/" + repository + ":" + tag;
  // A second -t is pushed too (one quoted CSV field, "name=a,b"); the
  // environment runs the first.
  const std::string also = "also-" + tag;
  auto up = envd(
      {"up", dir.string(), "-t", image, "-t", services_.registry + "/" + repository + ":" + also,
       "--network", "none", "--name", "dev", "--timeout", "30s"},
      env());
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(up.out, "dev\n");  // no terminal: no attach

  // The image is in the registry, and the server was asked to run exactly it.
  EXPECT_EQ(registry_digest(services_.registry, repository, tag).rfind("sha256:", 0), 0u);
  EXPECT_EQ(registry_digest(services_.registry, repository, also),
            registry_digest(services_.registry, repository, tag));
  auto state = server.state();
  ASSERT_TRUE(state.contains("bob")) << json::serialize(state);
  const auto& envs = state["bob"].as_object()["environments"].as_array();
  ASSERT_EQ(envs.size(), 1u) << json::serialize(state);
  EXPECT_EQ(envs[0].at("name"), "dev");
  EXPECT_EQ(envs[0].at("spec").at("image"), json::value(image));

  auto ls = envd_ok({"envs", "ls", "--format", "json"}, env());
  auto items = json::parse(ls.out).as_array();
  ASSERT_EQ(items.size(), 1u) << ls.out;
  EXPECT_EQ(items[0].at("name"), "dev");
  EXPECT_EQ(items[0].at("image"), json::value(image));
  EXPECT_EQ(envd_ok({"down", "dev"}, env()).out, "dev\n");
  EXPECT_TRUE(server.state()["bob"].as_object()["environments"].as_array().empty());

  // An --output other than the push is refused before anything is built.
  auto refused = envd({"up", dir.string(), "-t", image, "-o", "type=local,dest=/tmp/x"}, env());
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("envd up pushes the image for the envd-server runner"),
            std::string::npos)
      << refused.err;

  // Without a login, or with a name the runner refuses, nothing is built or
  // pushed: the runner checks before the build (ABI 1.6's check_create).
  const std::string unpushed = "unpushed-" + tag;
  const std::string unpushed_image = services_.registry + "/" + repository + ":" + unpushed;
  auto bad_name =
      envd({"up", dir.string(), "-t", unpushed_image, "--network", "none", "--name", "a/b"}, env());
  EXPECT_EQ(bad_name.exit_code, 1);
  EXPECT_EQ(bad_name.err,
            "envd: error: runner 'envd-server': environment name 'a/b' is invalid: the envd "
            "server names a pod and a service after it, so it must be 1 to 63 lowercase letters, "
            "digits and '-', starting with a letter and ending with a letter or digit\n");
  // A name made from the directory says so, and how to give another.
  fs::path odd = home() / "My_Project";
  write_text(odd / "Dockerfile", "FROM envd-test/busybox:latest\n");
  auto from_dir = envd({"up", odd.string(), "-t", unpushed_image, "--network", "none"}, env());
  EXPECT_EQ(from_dir.exit_code, 1);
  EXPECT_EQ(from_dir.err,
            "envd: error: runner 'envd-server': environment name 'my_project' is invalid: the "
            "envd server names a pod and a service after it, so it must be 1 to 63 lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit "
            "(the name is made from the directory '" +
                odd.string() + "'; give one with --name)\n");
  envd_ok({"logout"}, env());
  auto logged_out =
      envd({"up", dir.string(), "-t", unpushed_image, "--network", "none", "--name", "dev"}, env());
  EXPECT_EQ(logged_out.exit_code, 1);
  EXPECT_EQ(logged_out.err,
            "envd: error: runner 'envd-server': not logged in to the envd server at " +
                server.url() + " in context 'remote-dev'; run envd login\n");
  EXPECT_EQ(registry_manifest_status(services_.registry, repository, unpushed), 404)
      << "the build ran";
}

}  // namespace
}  // namespace envd::test
