// A loopback Docker Engine for tests that need answers a real dockerd cannot
// be made to give on demand (malformed heads, a daemon version, a container
// stuck in `removing` or `dead`): HTTP/1.1 on a unix socket in a temporary
// directory, one connection at a time, on its own thread. Test-only, never
// installed; used by the SDK's unit tests and the drivers' (plugins/).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "envd/docker_engine.hpp"

namespace envd::sdk::testing {

// What the fake engine received on one connection.
struct Received {
  std::string head;  // request line and headers
  std::string body;  // de-chunked
  std::string target() const {
    return head.substr(head.find(' ') + 1, head.find(" HTTP/") - head.find(' ') - 1);
  }
  bool has_header(const std::string& line) const {
    return head.find("\r\n" + line + "\r\n") != std::string::npos;
  }
};

inline bool read_byte(int fd, char& c) { return ::recv(fd, &c, 1, 0) == 1; }

inline bool read_line(int fd, std::string& line) {
  line.clear();
  char c = 0;
  while (read_byte(fd, c)) {
    line.push_back(c);
    if (line.size() >= 2 && line.compare(line.size() - 2, 2, "\r\n") == 0) return true;
  }
  return false;
}

inline bool read_exact(int fd, std::string& out, std::size_t n) {
  std::size_t start = out.size();
  out.resize(start + n);
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, out.data() + start + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

inline void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads one request exactly (never past its end), so that a hijacked
// connection's later bytes are left for the handler; without `with_body`,
// only its head (an Engine that takes an upload's head and reads no more).
inline bool read_request(int fd, Received& r, bool with_body = true) {
  std::string line;
  while (read_line(fd, line)) {
    r.head += line;
    if (line == "\r\n") break;
  }
  if (r.head.size() < 4 || r.head.compare(r.head.size() - 4, 4, "\r\n\r\n") != 0) return false;
  if (!with_body) return true;
  std::string lower = r.head;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    for (;;) {
      if (!read_line(fd, line)) return false;
      std::size_t size = std::stoul(line, nullptr, 16);
      if (size == 0) return read_line(fd, line);  // the final CRLF
      if (!read_exact(fd, r.body, size) || !read_line(fd, line)) return false;
    }
  }
  if (auto at = lower.find("content-length: "); at != std::string::npos) {
    return read_exact(fd, r.body, std::stoul(lower.substr(at + 16)));
  }
  return true;
}

inline std::string response(int status, const std::string& reason, const std::string& body,
                            const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n" + extra_headers +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// A loopback Docker Engine on a unix socket in a temporary directory. It
// answers /_ping itself (with `api_version`) and hands every other request to
// the handler, one connection at a time, on its own thread: with its body
// read (Body::read), or with only its head, the body left unread in the
// connection (Body::left).
class FakeEngine {
 public:
  using Handler = std::function<void(int fd, const Received&)>;
  enum class Body { read, left };

  explicit FakeEngine(Handler handler, std::string api_version = "1.41", Body body = Body::read)
      : handler_(std::move(handler)), api_version_(std::move(api_version)), body_(body) {
    char tmpl[] = "/tmp/envd-fake-engine-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/docker.sock";
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_, 8), 0);
    EXPECT_EQ(::pipe2(stop_, O_CLOEXEC), 0);
    thread_ = std::thread([this] { serve(); });
  }

  ~FakeEngine() {
    char c = 'x';
    EXPECT_EQ(::write(stop_[1], &c, 1), 1);
    thread_.join();
    ::close(listener_);
    ::close(stop_[0]);
    ::close(stop_[1]);
    std::filesystem::remove_all(dir_);
  }

  DockerEngine engine() const {
    return DockerEngine(DockerEndpoint{.url = url(), .socket_path = path_});
  }
  std::string url() const { return "unix://" + path_; }
  std::string dir() const { return dir_; }

  std::vector<Received> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  int pings() const { return pings_; }

 private:
  void serve() {
    for (;;) {
      pollfd fds[2] = {{listener_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 || (fds[1].revents & POLLIN)) return;
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Received r;
      if (read_request(fd, r, body_ == Body::read)) {
        if (r.target() == "/_ping") {
          ++pings_;
          send_all(fd, response(200, "OK", "OK", "Api-Version: " + api_version_ + "\r\n"));
        } else {
          {
            std::lock_guard lock(mutex_);
            requests_.push_back(r);
          }
          handler_(fd, r);
        }
      }
      ::close(fd);
    }
  }

  Handler handler_;
  std::string api_version_;
  Body body_;
  std::string dir_;
  std::string path_;
  int listener_ = -1;
  int stop_[2] = {-1, -1};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Received> requests_;
  std::atomic<int> pings_{0};
};

}  // namespace envd::sdk::testing
