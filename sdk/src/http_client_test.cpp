#include "envd/http_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace envd::sdk {
namespace {

using namespace std::chrono_literals;

// A server on 127.0.0.1 that answers one connection with `answer` (after
// reading the request head) and closes it.
class OneShotServer {
 public:
  explicit OneShotServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~OneShotServer() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  OneShotServer(const OneShotServer&) = delete;
  OneShotServer& operator=(const OneShotServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void serve_one() {
    thread_ = std::thread([this] {
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      char c = 0;
      while (request_.find("\r\n\r\n") == std::string::npos && ::recv(conn, &c, 1, 0) == 1) {
        request_ += c;
      }
      (void)::send(conn, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      ::close(conn);
    });
  }

  // Whether a connection waits to be accepted (none was made if not).
  bool connection_pending() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 100) == 1;
  }

 private:
  std::string answer_;
  std::string request_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A token a server handed out goes into a header as it is: CR LF in it would
// have ended the header and let the rest pass for headers, or a request of
// its own, on the wire.
TEST(HttpCall, AControlCharacterInAHeaderOrPathIsRefusedBeforeConnecting) {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  HttpServer target{server.url(), "", "the test server"};
  auto deadline = http_deadline_after(5s);
  auto injected =
      http_call(target, {"GET", "/x", "", {{"Authorization", "tok\r\nX-Injected: yes"}}}, deadline);
  ASSERT_FALSE(injected);
  EXPECT_EQ(injected.error().code(), Errc::invalid_argument);
  EXPECT_EQ(injected.error().message(),
            "cannot call the test server: the value of header 'Authorization' holds a control "
            "character");
  auto path = http_call(target, {"GET", "/x HTTP/1.1\r\nHost: y\r\n\r\nGET /z", "", {}}, deadline);
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code(), Errc::invalid_argument);
  auto spaced = http_call(target, {"GET", "/a b", "", {}}, deadline);
  ASSERT_FALSE(spaced);
  EXPECT_NE(spaced.error().message().find("holds a space or a control character"),
            std::string::npos)
      << spaced.error().message();
  EXPECT_FALSE(server.connection_pending()) << "a refused request still connected";
}

// A body cut short is the server's closing, not an answer in another protocol.
TEST(HttpCall, AnAnswerCutShortSaysTheConnectionClosed) {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"items\":");
  server.serve_one();
  auto answer = http_call({server.url(), "", "the test server"}, {"GET", "/list", "", {}},
                          http_deadline_after(5s));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), Errc::unavailable);
  EXPECT_EQ(answer.error().message(), "the test server at " + server.url() +
                                          " closed the connection in the middle of its answer "
                                          "to GET /list");
}

}  // namespace
}  // namespace envd::sdk
