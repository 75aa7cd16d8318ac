// The moby-worker driver against the real dockerd of tests/services (ctest
// fixture `engine`). Never skipped: without the services these tests fail.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "moby-worker/moby_worker_builder.hpp"
#include "services/test_services.hpp"

namespace envd::plugins {
namespace {

using namespace std::chrono_literals;

class MobyWorkerReal : public ::testing::Test {
 protected:
  void SetUp() override {
    services_ = test::TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
    ::setenv("DOCKER_HOST", services_.docker_host.c_str(), 1);
  }
  void TearDown() override { ::unsetenv("DOCKER_HOST"); }

  static sdk::Request request() {
    sdk::Request r;
    r.context = "test";
    r.address = "envd_buildkitd";
    r.timeout = 10s;
    return r;
  }

  test::TestServices services_;
};

// Reads exactly n bytes within 10 s.
std::string read_exactly(int fd, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) break;
    auto r = ::read(fd, out.data() + got, n - got);
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

TEST_F(MobyWorkerReal, DialGivesAnFdThatSpeaksHttp2) {
  MobyWorkerBuilder builder;
  auto transport = builder.dial(request());
  ASSERT_TRUE(transport) << transport.error().message();
  EXPECT_EQ(transport->kind, sdk::Transport::Kind::fd);
  EXPECT_EQ(transport->description, "moby-worker://envd_buildkitd");
  ASSERT_GE(transport->fd, 0);
  std::string hello = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  hello += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);  // empty SETTINGS
  ASSERT_EQ(::write(transport->fd, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
  // The server's first frame: 9-byte header, type 0x4 SETTINGS, stream 0.
  auto head = read_exactly(transport->fd, 9);
  ASSERT_EQ(head.size(), 9u);
  EXPECT_EQ(static_cast<unsigned char>(head[3]), 0x04);
  EXPECT_EQ(head.substr(5, 4), std::string(4, '\0'));
  std::size_t length = (static_cast<unsigned char>(head[0]) << 16) |
                       (static_cast<unsigned char>(head[1]) << 8) |
                       static_cast<unsigned char>(head[2]);
  EXPECT_EQ(length % 6, 0u) << "a SETTINGS payload is a list of 6-byte entries";
  ::close(transport->fd);
}

// POST /session: once upgraded, the daemon is the HTTP/2 client, so the
// first bytes on the connection are its client preface and SETTINGS, sent
// unasked; an Engine that refused the session would have answered the
// request with an error instead.
TEST_F(MobyWorkerReal, ASessionConnectionHasTheDaemonAsItsHttp2Client) {
  MobyWorkerBuilder builder;
  sdk::SessionRequest session{"envdtestsession0000000001",
                              "envd-test",
                              "",
                              {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"}};
  auto fd = builder.dial_session(request(), session);
  ASSERT_TRUE(fd) << fd.error().message();
  ASSERT_GE(*fd, 0);
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  EXPECT_EQ(read_exactly(*fd, preface.size()), preface);
  auto head = read_exactly(*fd, 9);
  ASSERT_EQ(head.size(), 9u);
  EXPECT_EQ(static_cast<unsigned char>(head[3]), 0x04) << "the preface is followed by SETTINGS";
  ::close(*fd);
}

TEST_F(MobyWorkerReal, StatusNamesTheEngine) {
  MobyWorkerBuilder builder;
  auto status = builder.status(request());
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->rfind(R"({"state":"running","detail":"Docker Engine )", 0), 0u) << *status;
  EXPECT_NE(status->find("(API 1."), std::string::npos) << *status;
  EXPECT_NE(status->find(") at unix://"), std::string::npos) << "names the endpoint: " << *status;
}

}  // namespace
}  // namespace envd::plugins
