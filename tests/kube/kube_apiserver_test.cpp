// The loopback Kubernetes API server of kube_fixture.hpp against the real
// kubectl, and BuildKit's kube-pod:// helper through it to the real buildkitd:
// what the kube-pod builder's end-to-end tests rely on. Exec runs with each
// kubectl there is: 1.32 over WebSocket and, forced, over SPDY/3.1; Debian's
// 1.20 over SPDY/3.1 (skipped, saying so, when scripts/install-deps.sh could
// not put it in place).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "kube/kube_fixture.hpp"
#include "kube/kube_spdy.hpp"

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

// ---- exec, by each kubectl and so each streaming protocol -------------------

// A kubectl, and how its exec travels.
struct ExecClient {
  const char* name;
  bool legacy;          // Debian's kubectl 1.20 (SPDY only) instead of the one on PATH
  bool websockets_off;  // KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false: kubectl 1.32 over SPDY
};

const ExecClient kExecClients[] = {
    {"Kubectl132", false, false},  // WebSocket v5.channel.k8s.io
    {"Kubectl120", true, false},   // SPDY/3.1, v4.channel.k8s.io
    {"Kubectl132OverSpdy", false, true},
};

class KubeExecTest : public KubeApiserverTest, public ::testing::WithParamInterface<ExecClient> {
 protected:
  void SetUp() override {
    KubeApiserverTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (GetParam().legacy) {
      if (auto why = KubeApiserver::kubectl_legacy_absent(); !why.empty()) GTEST_SKIP() << why;
    }
  }

  KubeApiserver& start_cluster(const json::value& state = KubeApiserver::buildkit_state()) {
    KubeApiserver::Options options;
    if (GetParam().legacy) options.kubectl = KubeApiserver::kKubectlLegacy;
    return start(state, options);
  }

  bool spdy() const { return GetParam().legacy || GetParam().websockets_off; }
  // What the server negotiates with this kubectl: v5 through the stream
  // translator; over SPDY the kubelet's first protocol (1.32 offers v5 first,
  // which only the translator speaks).
  std::string protocol() const { return spdy() ? "v4.channel.k8s.io" : "v5.channel.k8s.io"; }

  std::map<std::string, std::optional<std::string>> client_env() const {
    if (!GetParam().websockets_off) return {};
    return {{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false"}};
  }
  sdk::ProcessResult kubectl(const std::vector<std::string>& args,
                             const std::string& stdin_data = "") const {
    return kube_->kubectl(args, stdin_data, client_env());
  }
  // For buildctl, whose kube-pod:// helper runs kubectl from PATH.
  std::map<std::string, std::optional<std::string>> process_env() const {
    auto env = kube_->env();
    for (const auto& [key, value] : client_env()) env[key] = value;
    return env;
  }

  void expect_transport(const json::object& exec) const {
    EXPECT_EQ(exec.at("transport").as_string(), spdy() ? "spdy" : "websocket");
    EXPECT_EQ(exec.at("protocol").as_string(), protocol());
  }
};

INSTANTIATE_TEST_SUITE_P(Clients, KubeExecTest, ::testing::ValuesIn(kExecClients),
                         [](const ::testing::TestParamInfo<ExecClient>& client) {
                           return std::string(client.param.name);
                         });

TEST_P(KubeExecTest, ExecRefusesAnUnknownContainer) {
  auto& kube = start_cluster();
  ASSERT_TRUE(kube.ok());
  auto r = kubectl(
      {"exec", "-i", "buildkitd-0", "-n", "ci", "-c", "nope", "--", "buildctl", "dial-stdio"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "Error from server (BadRequest): container nope is not valid for pod buildkitd-0\n");
  // The apiserver refuses it before any upgrade: kubectl 1.32 tries the
  // WebSocket (GET), then falls back to SPDY (POST), refused the same way;
  // a SPDY client only POSTs.
  EXPECT_EQ(requested("GET", "/api/v1/namespaces/ci/pods/buildkitd-0/exec"), !spdy());
  EXPECT_TRUE(requested("POST", "/api/v1/namespaces/ci/pods/buildkitd-0/exec"));
  EXPECT_TRUE(kube.execs().empty());
}

TEST_P(KubeExecTest, ExecCarriesStdinStdoutAndTheExitCode) {
  auto& kube = start_cluster();
  ASSERT_TRUE(kube.ok());
  std::string data;
  for (int i = 0; i < 100000; ++i) data += std::to_string(i) + "\n";
  auto echoed = kubectl({"exec", "-i", "buildkitd-0", "-n", "ci", "--", "cat"}, data);
  EXPECT_EQ(echoed.exit_code, 0) << echoed.err;
  EXPECT_TRUE(echoed.out == data) << "cat echoed " << echoed.out.size() << " of " << data.size()
                                  << " bytes";
  auto failed = kubectl(
      {"exec", "buildkitd-0", "-n", "ci", "--", "sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(failed.exit_code, 7);
  EXPECT_EQ(failed.out, "out\n");
  EXPECT_EQ(failed.err, "err\ncommand terminated with exit code 7\n");
  auto missing = kubectl({"exec", "buildkitd-0", "-n", "ci", "--", "no-such-command"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("exec: \"no-such-command\": executable file not found in $PATH"),
            std::string::npos)
      << missing.err;
  auto execs = kube.wait_for_execs(3);
  ASSERT_EQ(execs.size(), 3u);
  expect_transport(execs[0]);
  EXPECT_EQ(execs[0].at("stdin_bytes").as_int64(), static_cast<std::int64_t>(data.size()));
  EXPECT_EQ(execs[0].at("stdout_bytes").as_int64(), static_cast<std::int64_t>(data.size()));
  EXPECT_EQ(execs[1].at("exit_code").as_int64(), 7);
  EXPECT_FALSE(execs[1].at("client_gone").as_bool());
  EXPECT_EQ(execs[2].at("exit_code").as_int64(), -1);
  for (const auto& exec : execs) EXPECT_FALSE(exec.contains("protocol_error")) << exec;
  if (spdy()) {
    // kubectl offered its protocols in X-Stream-Protocol-Version, newest first.
    bool offered = false;
    for (const auto& r : kube.requests()) {
      if (r.contains("stream_protocols")) {
        offered = true;
        std::string protocols(r.at("stream_protocols").as_string());
        EXPECT_NE(protocols.find("v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io"),
                  std::string::npos)
            << protocols;
        EXPECT_EQ(r.at("upgrade").as_string(), "SPDY/3.1");
      }
    }
    EXPECT_TRUE(offered);
  }
}

TEST_P(KubeExecTest, BuildctlReachesBuildkitdThroughKubePod) {
  auto& kube = start_cluster();
  ASSERT_TRUE(kube.ok());
  sdk::ProcessOptions o;
  o.argv = {bk_.buildctl, "--addr", "kube-pod://buildkitd-0?namespace=ci", "debug", "workers"};
  o.env = process_env();
  o.timeout = std::chrono::seconds(60);
  auto r = sdk::run_process(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_NE(r->out.find("linux/amd64"), std::string::npos) << r->out;
  auto execs = kube.wait_for_execs(1);
  ASSERT_EQ(execs.size(), 1u);
  expect_transport(execs[0]);
  const auto& argv = execs[0].at("argv").as_array();
  ASSERT_EQ(argv.size(), 2u);
  EXPECT_EQ(argv[0].as_string(), bk_.buildctl);
  EXPECT_EQ(argv[1].as_string(), "dial-stdio");
  EXPECT_EQ(execs[0].at("exit_code").as_int64(), 0);
  EXPECT_GT(execs[0].at("stdout_bytes").as_int64(), 0);
}

TEST_P(KubeExecTest, BuildctlBuildsThroughKubePod) {
  auto& kube = start_cluster();
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
  o.env = process_env();
  o.timeout = std::chrono::seconds(120);
  auto r = sdk::run_process(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_TRUE(read(dir_ / "out" / "payload.txt") == payload);
  auto execs = kube.wait_for_execs(1);
  ASSERT_GE(execs.size(), 1u);
  expect_transport(execs[0]);
  EXPECT_GT(execs[0].at("stdin_bytes").as_int64(), static_cast<std::int64_t>(payload.size()));
}

TEST_P(KubeExecTest, ExecFailsWhenTheContainerDoesNotRun) {
  auto& kube = start_cluster();
  ASSERT_TRUE(kube.ok());
  auto state = KubeApiserver::buildkit_state();
  state.at("pods").at(0).as_object()["waiting_reason"] = "CrashLoopBackOff";
  state.at("pods").at(0).as_object()["restarts"] = 4;
  kube.set_state(state);
  auto status = kubectl({"get", "pod", "buildkitd-0", "-n", "ci", "-o",
                         "jsonpath={.status.containerStatuses[0].state.waiting.reason}"});
  EXPECT_EQ(status.out, "CrashLoopBackOff") << status.err;
  auto r = kubectl({"exec", "-i", "buildkitd-0", "-n", "ci", "--", "buildctl", "dial-stdio"});
  EXPECT_EQ(r.exit_code, 1);
  // The stream translator reports the kubelet's refusal on the error channel;
  // over SPDY it comes back as the kubelet's plain-text reply to the upgrade.
  EXPECT_EQ(r.err, std::string(spdy() ? "error: " : "error: Internal error occurred: ") +
                       "unable to upgrade connection: container not found (\"buildkitd\")\n");
}

// RBAC as in Kubernetes 1.32: a WebSocket exec (GET) needs "get" on
// pods/exec, a SPDY one (POST) "create".
TEST_P(KubeExecTest, ExecNeedsGetOverWebSocketAndCreateOverSpdy) {
  auto state = KubeApiserver::buildkit_state();
  auto deny = [&](const char* verb) {
    state.as_object()["forbidden"] =
        json::array{json::object{{"namespace", "ci"},
                                 {"resources", json::array{"pods/exec"}},
                                 {"verbs", json::array{verb}}}};
    return state;
  };
  auto& kube = start_cluster(deny("create"));
  ASSERT_TRUE(kube.ok());
  auto r = kubectl({"exec", "buildkitd-0", "-n", "ci", "--", "echo", "hi"});
  if (spdy()) {
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err,
              "Error from server (Forbidden): pods \"buildkitd-0\" is forbidden: User "
              "\"system:serviceaccount:ci:envd\" cannot create resource \"pods/exec\" in API group "
              "\"\" in the namespace \"ci\"\n");
  } else {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "hi\n");
  }
  // Without "get", kubectl 1.32's WebSocket is refused and its SPDY fallback goes through.
  kube.set_state(deny("get"));
  r = kubectl({"exec", "buildkitd-0", "-n", "ci", "--", "echo", "hi"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hi\n");
  auto execs = kube.wait_for_execs(spdy() ? 1 : 2);
  ASSERT_FALSE(execs.empty());
  EXPECT_EQ(execs.back().at("transport").as_string(), "spdy");
}

// ---- SPDY/3.1 as kubectl never speaks it ---------------------------------------

namespace asio = boost::asio;

// A SPDY/3.1 client of the test's own over TLS, one call at a time, 10 s per read.
class RawSpdyClient {
 public:
  RawSpdyClient(int port, const std::string& ca_file) {
    tls_.load_verify_file(ca_file);
    stream_.set_verify_mode(asio::ssl::verify_peer);
    stream_.lowest_layer().connect(
        {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    timeval timeout{10, 0};
    ::setsockopt(stream_.lowest_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout,
                 sizeof timeout);
    stream_.handshake(asio::ssl::stream_base::client);
  }

  // Sends an HTTP request without body; returns the response's head, its body in body().
  std::string request(const std::string& text) {
    write(text);
    std::string head;
    char c = 0;
    while (head.find("\r\n\r\n") == std::string::npos &&
           asio::read(stream_, asio::buffer(&c, 1), ec_) == 1) {
      head += c;
    }
    body_.clear();
    auto at = head.find("Content-Length: ");
    if (at != std::string::npos) {
      body_.resize(std::stoul(head.substr(at + 16)));
      asio::read(stream_, asio::buffer(body_), ec_);
    }
    return head;
  }
  const std::string& body() const { return body_; }

  void write(const std::string& bytes) { asio::write(stream_, asio::buffer(bytes), ec_); }

  // The server's next frame; none once it has closed the connection (or did not answer in time).
  std::optional<envd::test::kube::spdy::Frame> frame() {
    for (;;) {
      envd::test::kube::spdy::Frame f;
      std::optional<envd::test::kube::spdy::FrameError> error;
      if (std::size_t used = decoder_.decode(buffer_, &f, &error)) {
        buffer_.erase(0, used);
        return f;
      }
      char chunk[16384];
      std::size_t n = stream_.read_some(asio::buffer(chunk), ec_);
      if (ec_) return std::nullopt;
      buffer_.append(chunk, n);
    }
  }

  envd::test::kube::spdy::Encoder& encoder() { return encoder_; }

  // Hangs up (the server waits for that after its GOAWAY).
  void close() {
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }

 private:
  asio::io_context io_;
  asio::ssl::context tls_{asio::ssl::context::tls_client};
  asio::ssl::stream<asio::ip::tcp::socket> stream_{io_, tls_};
  boost::system::error_code ec_;
  std::string body_;
  std::string buffer_;
  envd::test::kube::spdy::Decoder decoder_;
  envd::test::kube::spdy::Encoder encoder_;
};

bool is_control(const std::optional<envd::test::kube::spdy::Frame>& f,
                envd::test::kube::spdy::Type type) {
  return f && f->control && f->type == static_cast<std::uint16_t>(type);
}

// `kubectl exec -i buildkitd-0 -n ci -- cat` as a SPDY client asks for it.
std::string spdy_exec_request(const KubeApiserver& kube,
                              const std::vector<std::string>& protocols) {
  std::string r =
      "POST /api/v1/namespaces/ci/pods/buildkitd-0/exec?command=cat&stdin=true&stdout=true "
      "HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
      kube.token() + "\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
  for (const auto& p : protocols) r += "X-Stream-Protocol-Version: " + p + "\r\n";
  return r + "Content-Length: 0\r\n\r\n";
}

// The token is read as the apiserver's bearertoken authenticator reads it:
// the second of the header's space-separated parts, so a doubled space
// leaves it empty, and that is refused.
TEST_F(KubeApiserverTest, TheBearerTokenIsTheHeadersSecondPart) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  auto get = [&](const std::string& authorization) {
    RawSpdyClient client(kube.port(), bk_.ca());
    return client.request(
        "GET /api/v1/namespaces/ci/pods/buildkitd-0 HTTP/1.1\r\nHost: "
        "127.0.0.1\r\nAuthorization: " +
        authorization + "\r\nContent-Length: 0\r\n\r\n");
  };
  EXPECT_EQ(get("Bearer " + kube.token()).rfind("HTTP/1.1 200 ", 0), 0U);
  EXPECT_EQ(get("bearer " + kube.token() + " trailing").rfind("HTTP/1.1 200 ", 0), 0U);
  EXPECT_EQ(get("Bearer  " + kube.token()).rfind("HTTP/1.1 401 ", 0), 0U);
  EXPECT_EQ(get("Bearer" + kube.token()).rfind("HTTP/1.1 401 ", 0), 0U);
}

TEST_F(KubeApiserverTest, SpdyNegotiatesAsTheKubelet) {
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  RawSpdyClient none(kube.port(), bk_.ca());
  auto head = none.request(spdy_exec_request(kube, {}));
  EXPECT_EQ(head.rfind("HTTP/1.1 400 ", 0), 0U) << head;
  EXPECT_EQ(none.body(), "unable to upgrade: X-Stream-Protocol-Version is required\n");

  RawSpdyClient unknown(kube.port(), bk_.ca());
  head = unknown.request(spdy_exec_request(kube, {"v9.channel.k8s.io", "x"}));
  EXPECT_EQ(head.rfind("HTTP/1.1 403 ", 0), 0U) << head;
  EXPECT_NE(head.find("X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io\r\n"),
            std::string::npos)
      << head;
  EXPECT_NE(unknown.body().find("unable to upgrade: unable to negotiate protocol: client supports "
                                "[v9.channel.k8s.io x], server accepts [v4.channel.k8s.io "
                                "v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]\n"),
            std::string::npos)
      << unknown.body();

  // The first the kubelet knows, in the client's order; comma-separated lists count too.
  RawSpdyClient both(kube.port(), bk_.ca());
  head = both.request(
      spdy_exec_request(kube, {"v5.channel.k8s.io", "v3.channel.k8s.io, v4.channel.k8s.io"}));
  EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0U) << head;
  EXPECT_NE(head.find("X-Stream-Protocol-Version: v3.channel.k8s.io\r\n"), std::string::npos)
      << head;
  EXPECT_NE(head.find("Upgrade: SPDY/3.1\r\n"), std::string::npos) << head;
}

TEST_F(KubeApiserverTest, SpdyAnswersFramesKubectlNeverSendsAsTheDraftSays) {
  namespace spdy = envd::test::kube::spdy;
  auto& kube = start();
  ASSERT_TRUE(kube.ok());
  RawSpdyClient c(kube.port(), bk_.ca());
  auto head = c.request(spdy_exec_request(kube, {"v4.channel.k8s.io"}));
  ASSERT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0U) << head;
  auto& out = c.encoder();

  c.write(out.ping(1));  // a client's ping comes back as it is
  auto f = c.frame();
  ASSERT_TRUE(is_control(f, spdy::Type::ping));
  EXPECT_EQ(f->value, 1U);
  c.write(out.syn_stream(1, {{"streamtype", {"error"}}}, false));
  f = c.frame();
  ASSERT_TRUE(is_control(f, spdy::Type::syn_reply));
  EXPECT_EQ(f->stream_id, 1U);
  EXPECT_TRUE(f->headers.empty());
  // An uppercase header name refuses the stream, and only it.
  c.write(out.syn_stream(3, {{"StreamType", {"stdin"}}}, false));
  f = c.frame();
  ASSERT_TRUE(is_control(f, spdy::Type::rst_stream));
  EXPECT_EQ(f->stream_id, 3U);
  EXPECT_EQ(f->status, static_cast<std::uint32_t>(spdy::RstStatus::protocol_error));
  c.write(out.data(9, "x", false));  // a stream never opened
  f = c.frame();
  ASSERT_TRUE(is_control(f, spdy::Type::rst_stream));
  EXPECT_EQ(f->stream_id, 9U);
  EXPECT_EQ(f->status, static_cast<std::uint32_t>(spdy::RstStatus::invalid_stream));
  // Error, stdin and stdout: the command starts.
  for (auto [id, type] : {std::pair<std::uint32_t, const char*>{11, "stdin"}, {13, "stdout"}}) {
    c.write(out.syn_stream(id, {{"streamtype", {type}}}, false));
    f = c.frame();
    ASSERT_TRUE(is_control(f, spdy::Type::syn_reply));
    EXPECT_EQ(f->stream_id, id);
  }
  c.write(out.data(11, "hello\n", true));
  std::string echoed;
  std::string status;
  std::vector<std::uint32_t> reset;
  std::optional<spdy::Frame> goaway;
  while (!goaway && (f = c.frame())) {
    if (!f->control && f->stream_id == 13) echoed += f->data;
    if (!f->control && f->stream_id == 1) status += f->data;
    if (is_control(f, spdy::Type::rst_stream)) {
      EXPECT_EQ(f->status, static_cast<std::uint32_t>(spdy::RstStatus::cancel));
      reset.push_back(f->stream_id);
    }
    if (is_control(f, spdy::Type::goaway)) goaway = f;
  }
  EXPECT_EQ(echoed, "hello\n");
  EXPECT_EQ(status, R"({"metadata":{},"status":"Success"})");
  EXPECT_EQ(reset, (std::vector<std::uint32_t>{1, 11, 13}));
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->stream_id, 13U);
  EXPECT_EQ(goaway->status, static_cast<std::uint32_t>(spdy::GoAwayStatus::ok));
  c.close();
  ASSERT_EQ(kube.wait_for_execs(1).size(), 1u);

  // A frame of another SPDY version ends the session.
  RawSpdyClient d(kube.port(), bk_.ca());
  head = d.request(spdy_exec_request(kube, {"v4.channel.k8s.io"}));
  ASSERT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0U) << head;
  d.write(d.encoder().syn_stream(1, {{"streamtype", {"error"}}}, false));
  EXPECT_TRUE(is_control(d.frame(), spdy::Type::syn_reply));
  d.write(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));  // SPDY/2 PING
  f = d.frame();
  ASSERT_TRUE(is_control(f, spdy::Type::goaway));
  EXPECT_EQ(f->stream_id, 1U);
  EXPECT_EQ(f->status, static_cast<std::uint32_t>(spdy::GoAwayStatus::protocol_error));
  EXPECT_FALSE(d.frame());

  auto execs = kube.wait_for_execs(2);
  ASSERT_EQ(execs.size(), 2u);
  EXPECT_EQ(execs[0].at("transport").as_string(), "spdy");
  EXPECT_EQ(execs[0].at("exit_code").as_int64(), 0);
  EXPECT_EQ(execs[0].at("stdin_bytes").as_int64(), 6);
  EXPECT_FALSE(execs[0].contains("protocol_error")) << execs[0];
  EXPECT_EQ(execs[1].at("exit_code").as_int64(), -1);
  EXPECT_EQ(execs[1].at("protocol_error").as_string(), "SPDY version 2 frame; this is SPDY/3.1");
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
