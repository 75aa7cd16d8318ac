// The Docker Engine client against the real dockerd of tests/services (ctest
// fixture `engine`). Never skipped: without the services these tests fail.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "envd/docker_engine.hpp"
#include "services/test_services.hpp"

namespace envd::sdk {
namespace {

using namespace std::chrono_literals;

class RealEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    services_ = test::TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
    auto endpoint = parse_docker_host(services_.docker_host);
    ASSERT_TRUE(endpoint) << endpoint.error().message();
    endpoint_ = *endpoint;
  }
  DockerEngine engine() const { return DockerEngine(endpoint_); }

  test::TestServices services_;
  DockerEndpoint endpoint_;
};

TEST_F(RealEngine, NegotiatesAVersionAndReadsVersion) {
  auto engine = this->engine();
  auto version = engine.api_version(deadline_after(10s));
  ASSERT_TRUE(version) << version.error().message();
  EXPECT_FALSE(version->empty());
  auto body = engine.call("GET", "/version", "", deadline_after(10s));
  ASSERT_TRUE(body) << body.error().message();
  auto json = boost::json::parse(*body).as_object();
  EXPECT_TRUE(json.contains("ApiVersion")) << *body;
}

TEST_F(RealEngine, AMissingImageIsNotFoundWithTheDaemonsMessage) {
  auto engine = this->engine();
  auto body =
      engine.call("GET", "/images/envd-test/no-such-image:latest/json", "", deadline_after(10s));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().code(), Errc::not_found);
  // dockerd 20.10 says "no such image: <ref>: No such image: <ref>"; the
  // client passes the daemon's message on as it is.
  const auto& message = body.error().message();
  EXPECT_EQ(message.rfind("the Docker Engine at " + services_.docker_host + ": ", 0), 0u)
      << message;
  EXPECT_NE(message.find("No such image: envd-test/no-such-image:latest"), std::string::npos)
      << message;
}

TEST_F(RealEngine, PushStreamsProgressLinesToTheRegistry) {
  auto engine = this->engine();
  std::string repo = services_.registry + "/envd-engine-test/busybox";
  auto tagged = engine.call("POST", "/images/envd-test/busybox:latest/tag?repo=" + repo + "&tag=t1",
                            "", deadline_after(10s));
  ASSERT_TRUE(tagged) << tagged.error().message();
  std::vector<std::string> lines;
  // X-Registry-Auth is required by the API even for an anonymous registry:
  // base64url of "{}".
  auto status = engine.stream(
      "POST", "/images/" + repo + "/push?tag=t1", "", {{"X-Registry-Auth", "e30="}},
      StreamMode::lines,
      [&](std::string_view line) {
        lines.emplace_back(line);
        return true;
      },
      deadline_after(60s));
  ASSERT_TRUE(status) << status.error().message();
  ASSERT_FALSE(lines.empty());
  bool has_digest = false;
  for (const auto& line : lines) {
    EXPECT_FALSE(line.find("\"error\"") != std::string::npos) << line;
    if (line.find("digest: sha256:") != std::string::npos) has_digest = true;
  }
  EXPECT_TRUE(has_digest) << lines.back();
}

TEST_F(RealEngine, SaveThenLoadAnImageThroughAnFd) {
  auto engine = this->engine();
  std::string tar;
  auto saved = engine.stream(
      "GET", "/images/get?names=envd-test/busybox:latest", "", {}, StreamMode::chunks,
      [&](std::string_view data) {
        tar += data;
        return true;
      },
      deadline_after(60s));
  ASSERT_TRUE(saved) << saved.error().message();
  ASSERT_GT(tar.size(), 10000u);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  std::thread writer([&] {
    std::string_view rest = tar;
    while (!rest.empty()) {
      auto n = ::write(pipe_fds[1], rest.data(), rest.size());
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[1]);
  });
  std::vector<std::string> lines;
  auto loaded = engine.upload(
      "POST", "/images/load", "application/x-tar", body_from_fd(pipe_fds[0]), StreamMode::lines,
      [&](std::string_view line) {
        lines.emplace_back(line);
        return true;
      },
      deadline_after(60s));
  writer.join();
  ::close(pipe_fds[0]);
  ASSERT_TRUE(loaded) << loaded.error().message();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("envd-test/busybox:latest"), std::string::npos) << lines.back();
}

// Sends the HTTP/2 client preface and an empty SETTINGS frame on `fd` and
// expects the server's first frame to be SETTINGS: the socket speaks HTTP/2.
void expect_http2_server(int fd) {
  std::string hello = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  hello += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  ASSERT_EQ(::write(fd, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
  unsigned char frame[9];
  std::size_t got = 0;
  while (got < sizeof frame) {
    auto n = ::read(fd, frame + got, sizeof frame - got);
    ASSERT_GT(n, 0);
    got += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(frame[3], 0x04) << "the first frame from the server is not SETTINGS";
}

TEST_F(RealEngine, HijacksGrpcAndTheSocketSpeaksHttp2) {
  auto engine = this->engine();
  auto fd = engine.hijack("POST", "/grpc", "", {}, "h2c", deadline_after(10s));
  ASSERT_TRUE(fd) << fd.error().message();
  expect_http2_server(*fd);
  ::close(*fd);
}

// The same daemon on its plain TCP listener (tests/services/start.sh).
TEST_F(RealEngine, TalksToTheEngineOverPlainTcp) {
  ASSERT_EQ(services_.docker_tcp_host.rfind("tcp://127.0.0.1:", 0), 0u)
      << "the env file lacks DOCKER_TCP_HOST: " << services_.docker_tcp_host;
  ::setenv("DOCKER_HOST", services_.docker_tcp_host.c_str(), 1);
  auto from_env = DockerEngine::from_env();
  ::unsetenv("DOCKER_HOST");
  ASSERT_TRUE(from_env) << from_env.error().message();
  EXPECT_EQ(from_env->endpoint().url, services_.docker_tcp_host);
  auto& engine = *from_env;
  auto version = engine.version(deadline_after(10s));
  ASSERT_TRUE(version) << version.error().message();
  EXPECT_EQ(version->os, "linux");
  // The daemon's errors name the TCP endpoint.
  auto missing =
      engine.call("GET", "/images/envd-test/no-such-image:latest/json", "", deadline_after(10s));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found);
  EXPECT_EQ(missing.error().message().rfind("the Docker Engine at " + services_.docker_tcp_host, 0),
            0u)
      << missing.error().message();
  // Streaming: the base image's history, line by line.
  std::vector<std::string> lines;
  auto streamed = engine.stream(
      "GET", "/images/envd-test/busybox:latest/json", "", {}, StreamMode::lines,
      [&](std::string_view line) {
        lines.emplace_back(line);
        return true;
      },
      deadline_after(10s));
  ASSERT_TRUE(streamed) << streamed.error().message();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("envd-test/busybox:latest"), std::string::npos);
}

TEST_F(RealEngine, HijacksGrpcOverPlainTcpAndReturnsTheTcpSocket) {
  auto endpoint = parse_docker_host(services_.docker_tcp_host);
  ASSERT_TRUE(endpoint) << endpoint.error().message();
  DockerEngine engine(*endpoint);
  auto fd = engine.hijack("POST", "/grpc", "", {}, "h2c", deadline_after(10s));
  ASSERT_TRUE(fd) << fd.error().message();
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  ASSERT_EQ(::getpeername(*fd, reinterpret_cast<sockaddr*>(&peer), &len), 0);
  EXPECT_EQ(peer.ss_family, AF_INET) << "the fd is the TCP connection itself";
  EXPECT_EQ(::fcntl(*fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  expect_http2_server(*fd);
  ::close(*fd);
}

TEST_F(RealEngine, HijackRefusesAnotherUpgrade) {
  auto engine = this->engine();
  auto fd = engine.hijack("POST", "/grpc", "", {}, "websocket", deadline_after(10s));
  ASSERT_FALSE(fd);
  EXPECT_NE(fd.error().message().find("the Docker Engine at " + services_.docker_host + ": "),
            std::string::npos)
      << fd.error().message();
}

}  // namespace
}  // namespace envd::sdk
