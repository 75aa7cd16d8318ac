// The kube-pod builder end to end: envd, the real kubectl, and the loopback
// Kubernetes API server of kube_fixture.hpp, whose exec runs the real
// `buildctl dial-stdio` against the real standalone buildkitd of
// tests/buildkit. So every byte between envd and BuildKit goes through
// kubectl's own exec stream (WebSocket v5.channel.k8s.io with kubectl 1.32,
// SPDY/3.1 with Debian's kubectl 1.20 as ENVD_KUBECTL) and reaches BuildKit's
// own daemon; the API server is the only stand-in, and it answers as the real
// one does (status codes, Status bodies, RBAC text).
//
// Skipped, with the reason, when kubectl or the BuildKit binaries are absent.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "buildkit/real_buildkit_test.hpp"
#include "cli_harness.hpp"
#include "kube/kube_fixture.hpp"
#include "services/test_services.hpp"
#include "util/test_support.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The number of lines of `text` (a last line without newline counts).
size_t line_count(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n' ? 1 : 0;
  if (!text.empty() && text.back() != '\n') ++n;
  return n;
}

// The lines of envd's stderr that are not progress: with --progress plain a
// dial reports "connecting to buildkitd in pod ..." before it fails.
std::string without_progress(const std::string& err) {
  std::string out;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("connecting to buildkitd in pod ", 0) == 0) continue;
    out += line + "\n";
  }
  return out;
}

// A pod of the test cluster in kube_state.hpp's form.
json::object pod(const std::string& name, const std::string& phase = "Running", bool ready = true) {
  return json::object{{"namespace", "ci"},
                      {"name", name},
                      {"labels", json::object{{"app", "buildkitd"}}},
                      {"phase", phase},
                      {"ready", ready},
                      {"containers", json::array{"buildkitd"}},
                      {"owner_kind", "Deployment"},
                      {"owner_name", "buildkitd"}};
}

json::value cluster(json::array pods) {
  return json::object{
      {"pods", std::move(pods)},
      {"deployments", json::array{json::object{{"namespace", "ci"},
                                               {"name", "buildkitd"},
                                               {"selector", json::object{{"app", "buildkitd"}}}}}},
      {"statefulsets", json::array{json::object{{"namespace", "ci"},
                                                {"name", "buildkitd"},
                                                {"selector", json::object{{"app", "buildkitd"}}}}}},
      {"forbidden", json::array{json::object{{"namespace", "locked"}}}}};
}

// Processes whose command line contains `marker`: what a test left running.
std::vector<std::string> processes_with(const std::string& marker) {
  std::vector<std::string> found;
  for (const auto& [pid, cmdline] : envd::util::testing::processes_running(marker)) {
    found.push_back(std::to_string(pid) + ": " + cmdline);
  }
  return found;
}

class KubePodE2ETest : public RealBuildkitTestBase {
 protected:
  void SetUp() override {
    RealBuildkitTestBase::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (auto why = KubeApiserver::kubectl_absent(); !why.empty()) GTEST_SKIP() << why;
  }

  void TearDown() override {
    if (HasFailure() && kube_) {
      std::cerr << "apiserver log:\n"
                << KubeApiserver::read_file(kube_->log_file()) << "apiserver stderr:\n"
                << KubeApiserver::read_file(kube_->stderr_file());
    }
    kube_.reset();
    CliTest::TearDown();
  }

  KubeApiserver& start_cluster(const json::value& state = KubeApiserver::buildkit_state()) {
    kube_ = std::make_unique<KubeApiserver>(home() / "kube", bk_, state);
    EXPECT_TRUE(kube_->ok()) << kube_->error();
    return *kube_;
  }

  // envd with the cluster's kubeconfig; the Engine only where asked (the
  // `docker` exporter's result is loaded into it).
  std::map<std::string, std::optional<std::string>> env(bool with_engine = false) const {
    std::map<std::string, std::optional<std::string>> e =
        kube_ ? kube_->env() : std::map<std::string, std::optional<std::string>>{};
    e["DOCKER_HOST"] =
        with_engine ? services_.docker_host : "unix://" + (home() / "no-docker.sock").string();
    e["DOCKER_CONFIG"] = (home() / ".docker").string();
    if (!kubectl_.empty()) e["ENVD_KUBECTL"] = kubectl_;
    return e;
  }

  sdk::ProcessResult run(const std::vector<std::string>& args, bool with_engine = false) {
    return envd(args, env(with_engine));
  }

  void use_context(const std::string& name, const std::string& address) {
    auto r = run({"context", "create", "--name", name, "--builder", "kube-pod", "--builder-address",
                  address, "--use"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // A project with a COPY (the session's FileSync) and a RUN step (runc in
  // the daemon's worker) on the base image the fixture pushed.
  fs::path project(const std::string& name) {
    fs::path dir = home() / name;
    write_text(dir / "Dockerfile", "FROM " + bk_.base +
                                       "\nCOPY greeting.txt /greeting.txt\n"
                                       "RUN echo built-in-a-pod > /built.txt\n");
    write_text(dir / "greeting.txt", "hello from " + name + "\n");
    return dir;
  }

  void build_local(const std::string& name) {
    fs::path out = home() / (name + "-out");
    auto r = run({"build", "--progress", "plain", "--output", "type=local,dest=" + out.string(),
                  project(name).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_text(out / "greeting.txt"), "hello from " + name + "\n");
    EXPECT_EQ(read_text(out / "built.txt"), "built-in-a-pod\n");
  }

  // The pods the server exec'd `buildctl dial-stdio` into, in order.
  std::vector<std::string> exec_pods(size_t at_least) const {
    std::vector<std::string> pods;
    for (const auto& exec : kube_->wait_for_execs(at_least)) {
      pods.emplace_back(exec.at("pod").as_string());
    }
    return pods;
  }

  // A build that fails before it starts: exit 1 within `limit`, one line on
  // stderr containing every part of `parts`.
  void expect_one_line_failure(const std::vector<std::string>& parts,
                               std::chrono::seconds limit = std::chrono::seconds(12)) {
    auto start = Clock::now();
    auto r = run({"build", "--connect-timeout", "8s", "--output",
                  "type=local,dest=" + (home() / "never").string(), project("fails").string()});
    auto took = Clock::now() - start;
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const std::string error = without_progress(r.err);
    EXPECT_EQ(line_count(error), 1U) << r.err;
    EXPECT_EQ(error.rfind("envd: error: cannot connect to buildkitd at kube-pod://", 0), 0U)
        << r.err;
    for (const auto& part : parts) EXPECT_TRUE(contains(r.err, part)) << r.err;
    // The unix builder's hint about the Engine's socket is not this one's.
    EXPECT_FALSE(contains(r.err, "is it a buildkitd socket")) << r.err;
    EXPECT_LT(took, limit) << r.err;
    EXPECT_FALSE(fs::exists(home() / "never"));
  }

  std::unique_ptr<KubeApiserver> kube_;
  std::string kubectl_;  // ENVD_KUBECTL for envd, when set
};

// ---- builds ----------------------------------------------------------------

TEST_F(KubePodE2ETest, BuildsOnAPodByName) {
  start_cluster();
  use_context("k8s", "buildkitd-0?namespace=ci");
  build_local("by-name");
  auto pods = exec_pods(1);
  ASSERT_FALSE(pods.empty());
  EXPECT_EQ(pods.front(), "buildkitd-0");
  // kubectl asked for the pod (its phase) before it exec'd into it.
  bool got_pod = false;
  for (const auto& r : kube_->requests()) {
    if (r.at("method").as_string() == "GET" &&
        r.at("path").as_string() == "/api/v1/namespaces/ci/pods/buildkitd-0") {
      got_pod = true;
    }
  }
  EXPECT_TRUE(got_pod);
}

TEST_F(KubePodE2ETest, BuildsIntoTheEngineByDeployment) {
  start_cluster();
  use_context("k8s-deploy", "deployment/buildkitd?namespace=ci");
  std::string tag = "envd-test/kube-pod:" + std::to_string(::getpid());
  auto r = run({"build", "--progress", "plain", "-t", tag, project("by-deployment").string()},
               /*with_engine=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The image is in the Engine, and its RUN step ran in BuildKit's worker.
  sdk::ProcessOptions docker;
  docker.argv = {
      "docker", "-H",  services_.docker_host, "run",          "--rm", "--network", "none",
      tag,      "cat", "/built.txt",          "/greeting.txt"};
  docker.timeout = std::chrono::seconds(60);
  auto cat = sdk::run_process(docker);
  ASSERT_TRUE(cat) << cat.error().message();
  EXPECT_EQ(cat->out, "built-in-a-pod\nhello from by-deployment\n") << cat->err;
  docker.argv = {"docker", "-H", services_.docker_host, "rmi", "-f", tag};
  (void)sdk::run_process(docker);
}

TEST_F(KubePodE2ETest, BuildsOnAPodFoundByLabelSelector) {
  start_cluster();
  use_context("k8s-selector", "?namespace=ci&selector=app%3Dbuildkitd");
  build_local("by-selector");
  bool listed = false;
  for (const auto& r : kube_->requests()) {
    if (r.at("path").as_string() == "/api/v1/namespaces/ci/pods" &&
        contains(std::string(r.at("query").as_string()), "labelSelector=app%3Dbuildkitd")) {
      listed = true;
    }
  }
  EXPECT_TRUE(listed) << "kubectl did not list pods by label";
}

TEST_F(KubePodE2ETest, BuildsOnAStatefulSetsPod) {
  start_cluster();
  use_context("k8s-sts", "statefulset/buildkitd?namespace=ci");
  build_local("by-statefulset");
  EXPECT_EQ(exec_pods(1).front(), "buildkitd-0");
}

// kubectl 1.20 execs only over SPDY/3.1: a whole build through it, by
// deployment (so its `get` and discovery too), as envd's ENVD_KUBECTL.
TEST_F(KubePodE2ETest, BuildsThroughKubectl120OverSpdy) {
  if (auto why = KubeApiserver::kubectl_legacy_absent(); !why.empty()) GTEST_SKIP() << why;
  start_cluster();
  kubectl_ = KubeApiserver::kKubectlLegacy;
  use_context("k8s-legacy", "deployment/buildkitd?namespace=ci");
  build_local("over-spdy");
  auto execs = kube_->wait_for_execs(1);
  ASSERT_FALSE(execs.empty());
  for (const auto& exec : execs) {
    EXPECT_EQ(exec.at("transport").as_string(), "spdy") << exec;
    EXPECT_EQ(exec.at("protocol").as_string(), "v4.channel.k8s.io") << exec;
    EXPECT_EQ(exec.at("pod").as_string(), "buildkitd-0") << exec;
    EXPECT_FALSE(exec.contains("protocol_error")) << exec;
  }
  EXPECT_GT(execs.front().at("stdin_bytes").as_int64(), 0);
  // Every request was kubectl 1.20's: none went over WebSocket.
  for (const auto& r : kube_->requests()) {
    const auto* agent = r.if_contains("user_agent");
    ASSERT_NE(agent, nullptr) << r;
    EXPECT_EQ(std::string(agent->as_string()).rfind("kubectl/v1.20.", 0), 0U) << r;
    EXPECT_FALSE(r.contains("protocols")) << r;
  }
}

// ---- choosing among pods -----------------------------------------------------

TEST_F(KubePodE2ETest, ChoiceAmongThreePodsIsStickyPerContext) {
  start_cluster(cluster({pod("buildkitd-a"), pod("buildkitd-b"), pod("buildkitd-c")}));
  // Every context keeps its pod; over a handful of contexts more than one pod
  // is used (the hash spreads them).
  std::set<std::string> chosen;
  for (const std::string context : {"one", "two", "three", "four", "five", "six"}) {
    use_context(context, "deployment/buildkitd?namespace=ci");
    std::string first;
    for (int i = 0; i < 2; ++i) {
      auto r = run({"builder", "status", "--format", "json"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      auto status = json::parse(r.out).as_object();
      ASSERT_TRUE(status.at("reachable").as_bool()) << r.out;
      std::string pod_name(status.at("driver").at("pod").as_string());
      if (i == 0) first = pod_name;
      EXPECT_EQ(pod_name, first) << "context " << context << " moved to another pod";
    }
    chosen.insert(first);
  }
  EXPECT_GT(chosen.size(), 1U);
  // The exec went where status said, and a build goes there too.
  use_context("builds", "deployment/buildkitd?namespace=ci");
  auto r = run({"builder", "status", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string status_pod(json::parse(r.out).at("driver").at("pod").as_string());
  size_t before = kube_->execs().size();
  build_local("sticky");
  auto pods = exec_pods(before + 1);
  ASSERT_GT(pods.size(), before);
  EXPECT_EQ(pods.back(), status_pod);
}

TEST_F(KubePodE2ETest, APendingPodIsSkipped) {
  // Sorted, the Pending pod comes first; whatever the hash says, only the
  // Running one can be chosen.
  start_cluster(cluster({pod("buildkitd-a", "Pending", false), pod("buildkitd-b")}));
  for (const std::string context : {"p1", "p2", "p3", "p4"}) {
    use_context(context, "?namespace=ci&selector=app%3Dbuildkitd");
    auto r = run({"builder", "status", "--format", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out).at("driver").at("pod").as_string(), "buildkitd-b") << r.out;
  }
  build_local("pending-skipped");
  EXPECT_EQ(exec_pods(1).back(), "buildkitd-b");
}

// A pod being deleted (Running and Ready while it terminates) is never
// chosen: its buildkitd is about to go, with the build.
TEST_F(KubePodE2ETest, ATerminatingPodIsSkipped) {
  json::object leaving = pod("buildkitd-a");
  leaving["deleting"] = true;
  start_cluster(cluster({leaving, pod("buildkitd-b")}));
  for (const std::string context : {"t1", "t2", "t3", "t4"}) {
    use_context(context, "deployment/buildkitd?namespace=ci");
    auto r = run({"builder", "status", "--format", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out).at("driver").at("pod").as_string(), "buildkitd-b") << r.out;
  }
  use_context("by-name", "buildkitd-a?namespace=ci");
  auto named = run({"builder", "status"});
  EXPECT_EQ(named.exit_code, 1);
  EXPECT_TRUE(contains(named.err, "pod buildkitd-a in namespace ci is being deleted")) << named.err;
}

TEST_F(KubePodE2ETest, AllPodsDownIsOneClearLine) {
  auto crashing = pod("buildkitd-b", "Running", false);
  crashing["waiting_reason"] = "CrashLoopBackOff";
  start_cluster(cluster({pod("buildkitd-a", "Pending", false), crashing}));
  use_context("down", "deployment/buildkitd?namespace=ci");
  expect_one_line_failure({"no Running, Ready pod for deployment/buildkitd", "buildkitd-a",
                           "Pending", "buildkitd-b", "CrashLoopBackOff"});
  EXPECT_TRUE(kube_->execs().empty());
}

TEST_F(KubePodE2ETest, APendingPodByNameSaysSo) {
  auto pending = pod("buildkitd-0", "Pending", false);
  pending["node"] = "";
  start_cluster(cluster({pending}));
  use_context("pending", "buildkitd-0?namespace=ci");
  expect_one_line_failure({"pod buildkitd-0 in namespace ci is Pending"});
}

// ---- status ----------------------------------------------------------------

TEST_F(KubePodE2ETest, StatusNamesThePodAndTheRoundTrip) {
  start_cluster();
  use_context("status", "deployment/buildkitd?namespace=ci");
  auto r = run({"builder", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Pod:        buildkitd-0 (namespace ci, Running)")) << r.out;
  EXPECT_TRUE(contains(r.out, "Reachable:  yes")) << r.out;
  EXPECT_TRUE(contains(r.out, "BuildKit:   " + bk_.version)) << r.out;
  EXPECT_TRUE(contains(r.out, "Round trip: ")) << r.out;

  r = run({"builder", "status", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto status = json::parse(r.out).as_object();
  EXPECT_EQ(status.at("context").as_string(), "status");
  EXPECT_EQ(status.at("driver").at("namespace").as_string(), "ci");
  EXPECT_EQ(status.at("driver").at("phase").as_string(), "Running");
  EXPECT_EQ(status.at("version").as_string(), bk_.version);
  EXPECT_FALSE(status.at("workers").as_array().empty());
  EXPECT_GT(status.at("rtt_ms").to_number<double>(), 0.0);
}

// ---- failures: one line each, within the connect deadline --------------------

TEST_F(KubePodE2ETest, AMissingPodIsOneLine) {
  start_cluster();
  use_context("missing", "buildkitd-9?namespace=ci");
  expect_one_line_failure({"buildkitd-9", "not found"});
  // Nothing envd could start: status fails too (it said "missing" and
  // exited 0, passing a CI gate on a broken setup).
  auto status = run({"builder", "status", "--connect-timeout", "8s"});
  EXPECT_EQ(status.exit_code, 1) << status.out << status.err;
  EXPECT_TRUE(contains(status.err, "buildkitd-9")) << status.err;
}

TEST_F(KubePodE2ETest, ForbiddenShowsTheRbacText) {
  start_cluster();
  use_context("locked", "buildkitd-0?namespace=locked");
  expect_one_line_failure({"forbidden", "cannot get resource \"pods\"", "namespace \"locked\""});
}

TEST_F(KubePodE2ETest, ForbiddenExecShowsTheRbacText) {
  auto state = KubeApiserver::buildkit_state();
  state.as_object()["forbidden"] =
      json::array{json::object{{"namespace", "ci"}, {"resources", json::array{"pods/exec"}}}};
  start_cluster(state);
  use_context("no-exec", "buildkitd-0?namespace=ci");
  expect_one_line_failure({"forbidden", "pods/exec"});
}

TEST_F(KubePodE2ETest, AnUnknownContainerIsOneLine) {
  start_cluster();
  use_context("container", "buildkitd-0?namespace=ci&container=sidecar");
  expect_one_line_failure({"sidecar", "buildkitd-0"});
}

// A workload's or a selector's pod is held to container= too, before any
// exec (kubectl's "container sidecar not found" came after it).
TEST_F(KubePodE2ETest, AnUnknownContainerOfAWorkloadIsOneLine) {
  start_cluster();
  for (const std::string address : {"deployment/buildkitd?namespace=ci&container=sidecar",
                                    "?namespace=ci&selector=app%3Dbuildkitd&container=sidecar"}) {
    SCOPED_TRACE(address);
    use_context("container-" + std::to_string(address.size()), address);
    expect_one_line_failure({"has no container 'sidecar' (it has: buildkitd)"});
  }
  EXPECT_TRUE(kube_->execs().empty());
}

TEST_F(KubePodE2ETest, AnUnknownKubeContextIsOneLine) {
  start_cluster();
  use_context("kctx", "buildkitd-0?namespace=ci&context=nowhere");
  expect_one_line_failure({"nowhere"});
}

TEST_F(KubePodE2ETest, AWrongTokenIsOneLine) {
  start_cluster();
  use_context("token",
              std::string("buildkitd-0?namespace=ci&context=") + KubeApiserver::kWrongTokenContext);
  expect_one_line_failure({"kubectl", "credentials"});
}

TEST_F(KubePodE2ETest, AnUnreachableApiServerIsOneLine) {
  start_cluster();
  // A port nothing listens on: bind one, note it, close it.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  std::string server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto set = kube_->kubectl({"config", "set-cluster", "closed", "--server=" + server});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  set = kube_->kubectl({"config", "set-context", "closed", "--cluster=closed", "--user=envd-test"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  use_context("unreachable", "buildkitd-0?namespace=ci&context=closed");
  expect_one_line_failure({"127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), "was refused"});
}

// An API server that accepts connections and never answers: the connect
// deadline holds, and no kubectl is left behind.
TEST_F(KubePodE2ETest, AHangingApiServerHitsTheDeadlineAndKubectlIsReaped) {
  start_cluster();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);  // the kernel completes handshakes; nobody reads
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto set = kube_->kubectl({"config", "set-cluster", "hanging", "--server=" + server});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  set =
      kube_->kubectl({"config", "set-context", "hanging", "--cluster=hanging", "--user=envd-test"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  // A pod name no other test uses marks this test's kubectl processes.
  const std::string marker = "hang-" + std::to_string(::getpid());
  use_context("hanging", marker + "?namespace=ci&context=hanging");

  auto start = Clock::now();
  auto r = run({"build", "--connect-timeout", "3s", "--output",
                "type=local,dest=" + (home() / "never").string(), project("hangs").string()});
  auto took = Clock::now() - start;
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(line_count(r.err), 1U) << r.err;
  EXPECT_TRUE(contains(r.err, "did not finish within")) << r.err;
  EXPECT_LT(took, std::chrono::seconds(8)) << r.err;
  EXPECT_EQ(processes_with(marker), std::vector<std::string>{});
}

// A pod whose buildkitd never answers (exec works; the daemon's socket
// accepts and is silent): the build ends at --connect-timeout, and what the
// driver adds about the pod afterwards takes a quarter of it at most (its
// status waited 5 s more, and 2 s for the exec's end).
TEST_F(KubePodE2ETest, ASilentBuildkitdEndsNearTheConnectTimeout) {
  const fs::path socket = home() / "silent.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);  // connections complete; nobody reads
  KubeApiserver::Options options;
  options.buildkit_addr = "unix://" + socket.string();
  kube_ = std::make_unique<KubeApiserver>(home() / "kube", bk_, KubeApiserver::buildkit_state(),
                                          options);
  ASSERT_TRUE(kube_->ok()) << kube_->error();
  use_context("silent", "buildkitd-0?namespace=ci");

  auto start = Clock::now();
  auto r = run({"build", "--connect-timeout", "2s", "--output",
                "type=local,dest=" + (home() / "never").string(), project("silent").string()});
  auto took = Clock::now() - start;
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err,
                       "envd: error: cannot connect to buildkitd at "
                       "kube-pod://buildkitd-0?namespace=ci: no answer within 2s"))
      << r.err;
  // 2 s, then at most 0.5 s for the driver's word, and start-up (about
  // 0.4 s); the driver's word took 2.4 s more before.
  EXPECT_LT(took, std::chrono::milliseconds(3900)) << r.err;
  EXPECT_FALSE(fs::exists(home() / "never"));
}

// ---- addresses ---------------------------------------------------------------

TEST_F(KubePodE2ETest, HostileAddressesAreRefusedAtCreate) {
  for (const std::string address :
       {"-oFoo", "--kubeconfig=/tmp/x", "buildkitd-0?namespace=-n", "buildkitd-0?context=--token=x",
        "buildkitd-0?container=-c", "Buildkitd", "pod;rm -rf /", "deployment/", "daemonset/x",
        "buildkitd-0?flavour=x", "?selector=app%3D%3D%3Db;x"}) {
    auto r = run({"context", "create", "--name", "hostile", "--builder", "kube-pod",
                  "--builder-address", address});
    EXPECT_EQ(r.exit_code, 1) << address << "\n" << r.out;
    EXPECT_EQ(line_count(r.err), 1U) << address << "\n" << r.err;
  }
  // Nothing was stored.
  auto r = run({"context", "ls", "--format", "json"});
  EXPECT_FALSE(contains(r.out, "hostile")) << r.out;
}

}  // namespace
}  // namespace envd::test
