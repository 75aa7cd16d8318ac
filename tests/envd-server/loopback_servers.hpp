// The envd-server stand-ins as child processes of a test: the fake REST
// server (fake_envd_server.cpp) and the SSH gateway (ssh_gateway.cpp), each
// killed and reaped on destruction.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "envd/http_client.hpp"
#include "envd/process.hpp"

namespace envd::test {

namespace loopback_detail {

// Starts argv with stdout on a pipe and reads the first line (the port).
inline int start_and_read_port(const std::vector<std::string>& argv, pid_t& pid) {
  sdk::ProcessOptions options;
  options.argv = argv;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return 0;
  auto started = sdk::spawn_process(options, -1, out[1], 2);
  ::close(out[1]);
  if (!started) {
    ::close(out[0]);
    return 0;
  }
  pid = *started;
  std::string line;
  pollfd p{out[0], POLLIN, 0};
  while (line.find('\n') == std::string::npos && ::poll(&p, 1, 10000) > 0) {
    char buf[64];
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  return std::atoi(line.c_str());
}

inline void stop(pid_t pid) {
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    (void)sdk::wait_process(pid);
  }
}

}  // namespace loopback_detail

class FakeServer {
 public:
  explicit FakeServer(std::vector<std::string> args, bool tls = false) {
    std::vector<std::string> argv{ENVD_TEST_ENVD_SERVER};
    argv.insert(argv.end(), args.begin(), args.end());
    port_ = loopback_detail::start_and_read_port(argv, pid_);
    url_ = std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }
  ~FakeServer() { loopback_detail::stop(pid_); }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  bool started() const { return port_ > 0; }
  const std::string& url() const { return url_; }

  // POST /api/v1/register, as an admin would before a login with a password.
  int register_user(const std::string& login, const std::string& password) const {
    auto answer = call(
        "POST", "/api/v1/register",
        boost::json::serialize(boost::json::object{{"login_name", login}, {"password", password}}));
    return answer ? answer->status : -1;
  }

  // GET /_test/state: users, keys and environments.
  boost::json::object state() const {
    auto answer = call("GET", "/_test/state", "");
    if (!answer) return {};
    return boost::json::parse(answer->body).as_object();
  }

 private:
  Result<sdk::HttpAnswer> call(const std::string& method, const std::string& path,
                               const std::string& body) const {
    sdk::HttpServer server{"http://127.0.0.1:" + std::to_string(port_), "", "the fake server"};
    return sdk::http_call(server, {method, path, body},
                          sdk::http_deadline_after(std::chrono::seconds(10)));
  }

  pid_t pid_ = -1;
  int port_ = 0;
  std::string url_;
};

#ifdef ENVD_TEST_SSH_GATEWAY
// The SSH gateway for one user name and the one key it accepts.
class SshGateway {
 public:
  SshGateway(const std::string& user, const std::filesystem::path& authorized_key) {
    port_ = loopback_detail::start_and_read_port(
        {ENVD_TEST_SSH_GATEWAY, "--user", user, "--authorized-key", authorized_key.string()}, pid_);
  }
  ~SshGateway() { loopback_detail::stop(pid_); }
  SshGateway(const SshGateway&) = delete;
  SshGateway& operator=(const SshGateway&) = delete;

  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};
#endif

}  // namespace envd::test
