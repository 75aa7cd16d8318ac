// The client against the real Docker Engine of the `engine` test fixture
// (tests/services): dockerd 20.10's embedded BuildKit (v0.8) reached through a
// hijacked `POST /grpc`. Raw LLB only; Dockerfile builds are the CLI's e2e
// tests. The hijack here is a test helper, not the SDK's Engine client.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "buildkit/client.hpp"
#include "buildkit/filesync.hpp"
#include "buildkit/progress.hpp"
#include "buildkit/session.hpp"
#include "github.com/moby/buildkit/api/services/control/control.pb.h"
#include "github.com/moby/buildkit/solver/pb/ops.pb.h"
#include "services/test_services.hpp"
#include "util/test_support.hpp"

namespace envd::buildkit {
namespace {

namespace bk = moby::buildkit::v1;
using namespace std::chrono_literals;

int dial_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends a request and reads the response head byte by byte, so no byte after
// the blank line is consumed. Returns the head.
std::string http_head(int fd, const std::string& request) {
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return {};
  }
  std::string head;
  char c;
  while (head.size() < 8192 && ::recv(fd, &c, 1, 0) == 1) {
    head.push_back(c);
    if (head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0) break;
  }
  return head;
}

// A transport to the Engine's BuildKit: POST /grpc upgraded to h2c.
plugin::Transport hijack_grpc(const std::string& socket_path) {
  plugin::Transport transport;
  transport.description = "unix://" + socket_path;
  int fd = dial_unix(socket_path);
  if (fd < 0) return transport;
  std::string head = http_head(fd,
                               "POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
                               "Upgrade: h2c\r\nContent-Length: 0\r\n\r\n");
  if (head.rfind("HTTP/1.1 101", 0) != 0) {
    ADD_FAILURE() << "POST /grpc was not upgraded: " << head;
    ::close(fd);
    return transport;
  }
  transport.fd = fd;
  return transport;
}

// The status line of GET <path> on the Engine socket.
std::string engine_get_status(const std::string& socket_path, const std::string& path) {
  int fd = dial_unix(socket_path);
  if (fd < 0) return "cannot dial";
  std::string head = http_head(fd, "GET " + path + " HTTP/1.1\r\nHost: docker\r\n\r\n");
  ::close(fd);
  return head.substr(0, head.find("\r\n"));
}

std::string digest_of(const std::string& bytes);  // below

// A Definition: the ops in order, the terminal op pointing at the last one.
std::string definition_of(const std::vector<pb::Op>& ops) {
  pb::Definition definition;
  std::string last;
  for (const auto& op : ops) {
    std::string bytes;
    op.SerializeToString(&bytes);
    last = digest_of(bytes);
    definition.add_def(bytes);
  }
  pb::Op terminal;
  auto* input = terminal.add_inputs();
  input->set_digest(last);
  input->set_index(0);
  definition.add_def(terminal.SerializeAsString());
  return definition.SerializeAsString();
}

// An op digest: "sha256:" + hex SHA-256 of the exact serialized bytes.
std::string digest_of(const std::string& bytes) {
  unsigned char hash[SHA256_DIGEST_LENGTH];
  ::SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), hash);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned char b : hash) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

// A Definition: `/bin/sh -c <script>` on the fixture's base image, without
// network, its root filesystem as the result.
std::string exec_on_base_image(const std::string& script) {
  pb::Op source;
  source.mutable_source()->set_identifier("docker-image://docker.io/envd-test/busybox:latest");
  pb::Op exec;
  auto* input = exec.add_inputs();
  input->set_digest(digest_of(source.SerializeAsString()));
  input->set_index(0);
  auto* meta = exec.mutable_exec()->mutable_meta();
  meta->add_args("/bin/sh");
  meta->add_args("-c");
  meta->add_args(script);
  meta->add_env("PATH=/bin");
  meta->set_cwd("/");
  exec.mutable_exec()->set_network(pb::NET_MODE_NONE);
  auto* mount = exec.mutable_exec()->add_mounts();
  mount->set_input(0);
  mount->set_dest("/");
  mount->set_output(0);
  return definition_of({source, exec});
}

// Whether a process whose command line contains `needle` runs on this host
// (the fixture's dockerd runs its containers here).
bool process_running(const std::string& needle) {
  return !util::testing::processes_running(needle).empty();
}

class CountingSink : public ProgressSink {
 public:
  void update(const bk::StatusResponse& status) override {
    ++updates;
    for (const auto& v : status.vertexes()) {
      if (!v.error().empty()) errors += v.error() + "\n";
    }
    for (const auto& log : status.logs()) logs += log.msg();
  }
  void done() override { ++done_called; }
  int updates = 0;
  int done_called = 0;
  std::string errors;
  std::string logs;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    services_ = test::TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
    socket_ = services_.docker_socket();
  }

  Client connect() {
    auto client = Client::connect(hijack_grpc(socket_), 10s);
    EXPECT_TRUE(client) << client.error().message();
    return std::move(*client);
  }

  test::TestServices services_;
  std::string socket_;
};

TEST_F(EngineTest, InfoShowsTheMobyWorker) {
  Client client = connect();
  auto info = client.info(10s);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->version, "");  // BuildKit v0.8 has no Info
  ASSERT_FALSE(info->workers.empty());
  EXPECT_EQ(info->workers[0].id, "moby");
  EXPECT_FALSE(info->workers[0].platforms.empty());
}

// The Engine's BuildKit applies ListWorkers' filter before its platform
// detection: a probe that expects the moby worker gets an empty answer, and
// the client keeps what it expected (the platform below is no real one).
// Expecting another worker gets the Engine's real answer.
TEST_F(EngineTest, AProbeExpectingTheMobyWorkerIsAnsweredWithoutIt) {
  Worker moby;
  moby.id = "moby";
  moby.platforms = {"test/expected"};
  auto client = Client::connect(hijack_grpc(socket_), 10s, nullptr, Client::Probe::wait, {moby});
  ASSERT_TRUE(client) << client.error().message();
  ASSERT_EQ(client->workers().size(), 1u);
  EXPECT_EQ(client->workers()[0].platforms, std::vector<std::string>{"test/expected"});

  Worker other;
  other.id = "wkc4rxbo9w0xhvjgn8sv0z1tm";
  auto listed = Client::connect(hijack_grpc(socket_), 10s, nullptr, Client::Probe::wait, {other});
  ASSERT_TRUE(listed) << listed.error().message();
  ASSERT_EQ(listed->workers().size(), 1u);
  EXPECT_EQ(listed->workers()[0].id, "moby");
  EXPECT_NE(std::find(listed->workers()[0].platforms.begin(), listed->workers()[0].platforms.end(),
                      "linux/amd64"),
            listed->workers()[0].platforms.end());
}

TEST_F(EngineTest, MkfileOnScratchExportsAnImage) {
  Client client = connect();
  for (int i = 0; i < 3; ++i) {  // sequential builds: a fresh session each time
    pb::Op op;
    auto* action = op.mutable_file()->add_actions();
    action->set_input(-1);
    action->set_secondaryinput(-1);
    action->set_output(0);
    auto* mkfile = action->mutable_mkfile();
    mkfile->set_path("/hello");
    mkfile->set_mode(0644);
    mkfile->set_data("hello from envd " + std::to_string(i) + "\n");
    mkfile->set_timestamp(-1);
    SolveRequest request;
    request.frontend = "";
    request.definition = definition_of({op});
    request.exports = {{"moby", {{"name", "envd-e2e/mkfile:latest"}}}};
    CountingSink sink;
    auto result = client.solve(request, {}, sink, CancelToken());
    ASSERT_TRUE(result) << "build " << i << ": " << result.error().message();
    EXPECT_EQ(result->exporter_response.count("containerimage.digest"), 1u);
    EXPECT_GT(sink.updates, 0);
    EXPECT_EQ(sink.done_called, 1);
  }
  EXPECT_EQ(engine_get_status(socket_, "/images/envd-e2e/mkfile:latest/json"), "HTTP/1.1 200 OK");
}

TEST_F(EngineTest, ExecOnTheLocalBaseImage) {
  Client client = connect();
  const std::string marker = "built-by-envd-" + random_id();  // a fresh op: never cached
  SolveRequest request;
  request.frontend = "";
  request.definition = exec_on_base_image("echo " + marker + " > /out && cat /out");
  request.exports = {{"moby", {{"name", "envd-e2e/exec:latest"}}}};
  CountingSink sink;
  auto result = client.solve(request, {}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message() << "\n" << sink.errors;
  EXPECT_NE(sink.logs.find(marker), std::string::npos) << sink.logs;
  EXPECT_EQ(engine_get_status(socket_, "/images/envd-e2e/exec:latest/json"), "HTTP/1.1 200 OK");
}

TEST_F(EngineTest, FailingStepReportsTheDaemonMessage) {
  Client client = connect();
  SolveRequest request;
  request.frontend = "";
  request.definition = exec_on_base_image("exit 3");
  CountingSink sink;
  auto result = client.solve(request, {}, sink, CancelToken());
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message().find("exit code: 3"), std::string::npos)
      << result.error().message();
}

TEST_F(EngineTest, CancelStopsARunningStep) {
  Client client = connect();
  SolveRequest request;
  request.frontend = "";
  // The trailing no-op keeps sh (and the marker in its command line) alive.
  const std::string marker = "envd-cancel-" + random_id();
  request.definition = exec_on_base_image("sleep 60; : " + marker);
  CountingSink sink;
  CancelToken cancel;
  // Cancels only once the step runs (a step that never started would make
  // the test prove nothing); gives up after 60 s, which fails the test below.
  std::atomic<bool> step_ran{false};
  std::chrono::steady_clock::time_point cancelled_at;
  std::thread canceller([&, copy = cancel]() mutable {
    for (int i = 0; i < 600 && !process_running(marker); ++i) std::this_thread::sleep_for(100ms);
    step_ran = process_running(marker);
    cancelled_at = std::chrono::steady_clock::now();
    copy.cancel();
  });
  auto result = client.solve(request, {}, sink, cancel);
  canceller.join();
  ASSERT_TRUE(step_ran) << "the step never started, so cancelling it proved nothing";
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::cancelled) << result.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, 10s);
  // The daemon stops the step, not just the client.
  for (int i = 0; i < 100 && process_running(marker); ++i) std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(process_running(marker)) << "the cancelled step still runs";
}

// A Dockerfile build through the session: the daemon fetches the context and
// the Dockerfile over FileSync and health-checks the session every second
// (v0.8 drops it on one failure) during a step longer than that.
TEST_F(EngineTest, DockerfileBuildUsesTheSession) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/envd-bk-ctx-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  fs::path dir = tmpl;
  std::ofstream(dir / "Dockerfile") << "FROM envd-test/busybox:latest\n"
                                       "RUN sleep 3\n"
                                       "COPY hello /hello\n"
                                       "RUN cat /hello\n";
  std::ofstream(dir / "hello") << "hello through the session\n";
  Client client = connect();
  FileSyncProvider files({{"context", dir}, {"dockerfile", dir}});
  SolveRequest request;
  request.frontend_attrs = {
      {"filename", "Dockerfile"}, {"force-network-mode", "none"}, {"no-cache", ""}};
  request.exports = {{"moby", {{"name", "envd-e2e/dockerfile:latest"}}}};
  CountingSink sink;
  auto result = client.solve(request, {&files}, sink, CancelToken());
  ASSERT_TRUE(result) << result.error().message() << "\n" << sink.errors;
  EXPECT_NE(sink.logs.find("hello through the session"), std::string::npos) << sink.logs;
  EXPECT_EQ(engine_get_status(socket_, "/images/envd-e2e/dockerfile:latest/json"),
            "HTTP/1.1 200 OK");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace envd::buildkit
