// The loopback Kubernetes API server of kube_fixture.hpp against the real
// kubectl, and BuildKit's kube-pod:// helper through it to the real buildkitd:
// what the kube-pod builder's end-to-end tests rely on.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "kube/kube_fixture.hpp"

namespace envd::test {
namespace {

namespace json = boost::json;

class KubeApiserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bk_ = RealBuildkit::load();
    if (!bk_.absent.empty()) GTEST_SKIP() << bk_.absent;
    ASSERT_TRUE(bk_.ok()) << bk_.error;
    if (auto why = KubeApiserver::kubectl_absent(); !why.empty()) GTEST_SKIP() << why;
    std::string pattern = (std::filesystem::temp_directory_path() / "envd-kube-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    if (HasFailure() && kube_) {
      std::cerr << "apiserver log:\n"
                << read(kube_->log_file()) << "stderr:\n"
                << read(kube_->stderr_file());
    }
    kube_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  static std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  KubeApiserver& start(const json::value& state = KubeApiserver::buildkit_state(),
                       KubeApiserver::Options options = {}) {
    kube_ = std::make_unique<KubeApiserver>(dir_ / "kube", bk_, state, options);
    EXPECT_TRUE(kube_->ok()) << kube_->error();
    return *kube_;
  }

  // Whether the server saw `method path` (path without the query).
  bool requested(const std::string& method, const std::string& path) const {
    auto log = kube_->requests();
    return std::any_of(log.begin(), log.end(), [&](const json::object& e) {
      return e.at("method").as_string() == method && e.at("path").as_string() == path;
    });
  }

  RealBuildkit bk_;
  std::filesystem::path dir_;
  std::unique_ptr<KubeApiserver> kube_;
};

TEST_F(KubeApiserverTest, GetsAPodAsJson) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  auto r = kube.kubectl({"get", "pod", "buildkitd-0", "-n", "ci", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto pod = json::parse(r.out).as_object();
  EXPECT_EQ(pod.at("kind").as_string(), "Pod");
  EXPECT_EQ(pod.at("metadata").at("name").as_string(), "buildkitd-0");
  EXPECT_EQ(pod.at("metadata").at("namespace").as_string(), "ci");
  EXPECT_EQ(pod.at("metadata").at("labels").at("app").as_string(), "buildkitd");
  EXPECT_EQ(pod.at("spec").at("containers").at(0).at("name").as_string(), "buildkitd");
  EXPECT_EQ(pod.at("status").at("phase").as_string(), "Running");
  EXPECT_TRUE(pod.at("status").at("containerStatuses").at(0).at("ready").as_bool());
  EXPECT_TRUE(requested("GET", "/api/v1/namespaces/ci/pods/buildkitd-0"));
  // kubectl 1.32 asks for aggregated discovery first, and gets it.
  EXPECT_TRUE(requested("GET", "/api"));
  EXPECT_FALSE(requested("GET", "/api/v1"));
}

TEST_F(KubeApiserverTest, ListsPodsByLabelSelector) {
  auto state = KubeApiserver::buildkit_state();
  state.at("pods").as_array().push_back(
      json::parse(R"({"namespace": "ci", "name": "other", "labels": {"app": "other"}})"));
  state.at("pods").as_array().push_back(json::parse(
      R"({"namespace": "elsewhere", "name": "buildkitd-0", "labels": {"app": "buildkitd"}})"));
  auto& kube = start(state);
  ASSERT_TRUE(kube.ok());
  auto names = [&](const std::string& selector) {
    auto r = kube.kubectl({"get", "pods", "-n", "ci", "-l", selector, "-o",
                           "jsonpath={range .items[*]}{.metadata.name} {end}"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(names("app=buildkitd"), "buildkitd-0 ");
  EXPECT_EQ(names("app==buildkitd"), "buildkitd-0 ");
  EXPECT_EQ(names("app!=buildkitd"), "other ");
  EXPECT_EQ(names("app=buildkitd,app!=other"), "buildkitd-0 ");
  auto bad = kube.kubectl({"get", "pods", "-n", "ci", "-l", "app buildkitd"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("unable to parse requirement"), std::string::npos) << bad.err;
}

TEST_F(KubeApiserverTest, GetsWorkloadsWithTheirSelectors) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  for (const char* w : {"deployment/buildkitd", "statefulset/buildkitd"}) {
    auto r =
        kube.kubectl({"get", w, "-n", "ci", "-o", "jsonpath={.spec.selector.matchLabels.app}"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "buildkitd") << w;
  }
  EXPECT_TRUE(requested("GET", "/apis/apps/v1/namespaces/ci/deployments/buildkitd"));
  EXPECT_TRUE(requested("GET", "/apis/apps/v1/namespaces/ci/statefulsets/buildkitd"));
}

TEST_F(KubeApiserverTest, FailsAsTheApiserverDoes) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  auto missing = kube.kubectl({"get", "pod", "nope", "-n", "ci"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "Error from server (NotFound): pods \"nope\" not found\n");
  auto forbidden = kube.kubectl({"get", "pod", "buildkitd-0", "-n", "locked"});
  EXPECT_EQ(forbidden.exit_code, 1);
  EXPECT_EQ(forbidden.err,
            "Error from server (Forbidden): pods \"buildkitd-0\" is forbidden: User "
            "\"system:serviceaccount:ci:envd\" cannot get resource \"pods\" in API group \"\" in "
            "the namespace \"locked\"\n");
  auto wrong_token = kube.kubectl(
      {"--context", KubeApiserver::kWrongTokenContext, "get", "pod", "buildkitd-0", "-n", "ci"});
  EXPECT_EQ(wrong_token.exit_code, 1);
  EXPECT_NE(wrong_token.err.find("error: You must be logged in to the server (Unauthorized)"),
            std::string::npos)
      << wrong_token.err;
  auto unknown_ca = kube.kubectl(
      {"--context", KubeApiserver::kUnknownCaContext, "get", "pod", "buildkitd-0", "-n", "ci"});
  EXPECT_EQ(unknown_ca.exit_code, 1);
  EXPECT_NE(unknown_ca.err.find("certificate signed by unknown authority"), std::string::npos)
      << unknown_ca.err;
}

TEST_F(KubeApiserverTest, ExecRefusesAnUnknownContainer) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  auto r = kube.kubectl(
      {"exec", "-i", "buildkitd-0", "-n", "ci", "-c", "nope", "--", "buildctl", "dial-stdio"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "Error from server (BadRequest): container nope is not valid for pod buildkitd-0\n");
  // The WebSocket upgrade is refused, so kubectl falls back to SPDY, refused the same way.
  EXPECT_TRUE(requested("GET", "/api/v1/namespaces/ci/pods/buildkitd-0/exec"));
  EXPECT_TRUE(requested("POST", "/api/v1/namespaces/ci/pods/buildkitd-0/exec"));
  EXPECT_TRUE(kube.execs().empty());
}

TEST_F(KubeApiserverTest, ExecCarriesStdinStdoutAndTheExitCode) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  std::string data;
  for (int i = 0; i < 100000; ++i) data += std::to_string(i) + "\n";
  auto echoed = kube.kubectl({"exec", "-i", "buildkitd-0", "-n", "ci", "--", "cat"}, data);
  EXPECT_EQ(echoed.exit_code, 0) << echoed.err;
  EXPECT_TRUE(echoed.out == data) << "cat echoed " << echoed.out.size() << " of " << data.size()
                                  << " bytes";
  auto failed = kube.kubectl(
      {"exec", "buildkitd-0", "-n", "ci", "--", "sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(failed.exit_code, 7);
  EXPECT_EQ(failed.out, "out\n");
  EXPECT_EQ(failed.err, "err\ncommand terminated with exit code 7\n");
  auto execs = kube.wait_for_execs(2);
  ASSERT_EQ(execs.size(), 2u);
  EXPECT_EQ(execs[0].at("protocol").as_string(), "v5.channel.k8s.io");
  EXPECT_EQ(execs[0].at("stdin_bytes").as_int64(), static_cast<std::int64_t>(data.size()));
  EXPECT_EQ(execs[1].at("exit_code").as_int64(), 7);
}

TEST_F(KubeApiserverTest, BuildctlReachesBuildkitdThroughKubePod) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  sdk::ProcessOptions o;
  o.argv = {bk_.buildctl, "--addr", "kube-pod://buildkitd-0?namespace=ci", "debug", "workers"};
  o.env = kube.env();
  o.timeout = std::chrono::seconds(60);
  auto r = sdk::run_process(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_NE(r->out.find("linux/amd64"), std::string::npos) << r->out;
  auto execs = kube.wait_for_execs(1);
  ASSERT_EQ(execs.size(), 1u);
  const auto& argv = execs[0].at("argv").as_array();
  ASSERT_EQ(argv.size(), 2u);
  EXPECT_EQ(argv[0].as_string(), bk_.buildctl);
  EXPECT_EQ(argv[1].as_string(), "dial-stdio");
  EXPECT_EQ(execs[0].at("exit_code").as_int64(), 0);
  EXPECT_GT(execs[0].at("stdout_bytes").as_int64(), 0);
}

TEST_F(KubeApiserverTest, BuildctlBuildsThroughKubePod) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  auto context = dir_ / "context";
  std::filesystem::create_directories(context);
  std::ofstream(context / "Dockerfile") << "FROM scratch\nCOPY payload.txt /payload.txt\n";
  std::string payload;
  for (int i = 0; i < 200000; ++i) payload += "line " + std::to_string(i) + "\n";
  std::ofstream(context / "payload.txt") << payload;
  sdk::ProcessOptions o;
  o.argv = {bk_.buildctl,
            "--addr",
            "kube-pod://buildkitd-0?namespace=ci",
            "build",
            "--frontend",
            "dockerfile.v0",
            "--local",
            "context=" + context.string(),
            "--local",
            "dockerfile=" + context.string(),
            "--output",
            "type=local,dest=" + (dir_ / "out").string()};
  o.env = kube.env();
  o.timeout = std::chrono::seconds(120);
  auto r = sdk::run_process(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_TRUE(read(dir_ / "out" / "payload.txt") == payload);
  auto execs = kube.wait_for_execs(1);
  ASSERT_GE(execs.size(), 1u);
  EXPECT_GT(execs[0].at("stdin_bytes").as_int64(), static_cast<std::int64_t>(payload.size()));
}

TEST_F(KubeApiserverTest, ExecFailsWhenTheContainerDoesNotRun) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  auto state = KubeApiserver::buildkit_state();
  state.at("pods").at(0).as_object()["waiting_reason"] = "CrashLoopBackOff";
  state.at("pods").at(0).as_object()["restarts"] = 4;
  kube.set_state(state);
  auto status = kube.kubectl({"get", "pod", "buildkitd-0", "-n", "ci", "-o",
                              "jsonpath={.status.containerStatuses[0].state.waiting.reason}"});
  EXPECT_EQ(status.out, "CrashLoopBackOff") << status.err;
  auto r = kube.kubectl({"exec", "-i", "buildkitd-0", "-n", "ci", "--", "buildctl", "dial-stdio"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "error: Internal error occurred: unable to upgrade connection: container not found "
            "(\"buildkitd\")\n");
}

TEST_F(KubeApiserverTest, ServesLegacyDiscoveryWithoutAggregation) {
  KubeApiserver::Options options;
  options.aggregated_discovery = false;
  auto& kube = start(KubeApiserver::buildkit_state(), options);
  ASSERT_TRUE(kube.ok());
  auto r = kube.kubectl({"get", "sts", "-n", "ci", "-o", "name"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "statefulset.apps/buildkitd\n");
  EXPECT_TRUE(requested("GET", "/api/v1"));
  EXPECT_TRUE(requested("GET", "/apis/apps/v1"));
}

}  // namespace
}  // namespace envd::test
