// Test fixtures shared by the suites that need a TLS endpoint: a PKI made by
// the openssl CLI, and envd_grpc_bridge (grpc_bridge.cpp) as a child process;
// and helpers for reading a hijacked exec's multiplexed output.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli_harness.hpp"
#include "envd/docker_engine.hpp"
#include "envd/process.hpp"
#include "services/test_services.hpp"

namespace envd::test {

// Runs a helper command (openssl, tar) that must succeed.
inline sdk::ProcessResult run_ok(const std::vector<std::string>& argv,
                                 const std::string& cwd = "") {
  sdk::ProcessOptions options;
  options.argv = argv;
  options.cwd = cwd;
  options.timeout = std::chrono::seconds(60);
  auto r = sdk::run_process(options);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  EXPECT_TRUE(r && r->succeeded()) << sdk::format_command(argv) << "\n" << (r ? r->err : "");
  return r ? *r : sdk::ProcessResult{};
}

// Test PKI made by the openssl CLI: a CA, a server certificate for 127.0.0.1
// and localhost, a client certificate, and an unrelated second CA.
struct Pki {
  std::filesystem::path dir;
  std::filesystem::path ca, server_cert, server_key, client_cert, client_key, other_ca;
  std::filesystem::path stranger_cert, stranger_key;  // a client pair issued by other_ca
  std::filesystem::path misnamed_cert, misnamed_key;  // a server pair for elsewhere.example only

  void make(const std::filesystem::path& where) {
    dir = where;
    std::filesystem::create_directories(dir);
    auto p = [&](const char* name) { return (dir / name).string(); };
    auto new_ca = [&](const char* name, const char* cn) {
      run_ok({"openssl",
              "req",
              "-x509",
              "-newkey",
              "ec",
              "-pkeyopt",
              "ec_paramgen_curve:prime256v1",
              "-nodes",
              "-days",
              "2",
              "-subj",
              std::string("/CN=") + cn,
              "-addext",
              "basicConstraints=critical,CA:TRUE",
              "-addext",
              "keyUsage=critical,keyCertSign,cRLSign",
              "-keyout",
              p((std::string(name) + ".key").c_str()),
              "-out",
              p((std::string(name) + ".pem").c_str())});
    };
    new_ca("ca", "envd test CA");
    new_ca("other-ca", "unrelated CA");
    auto issue = [&](const std::string& name, const std::string& cn, const std::string& ext,
                     const std::string& issuer = "ca") {
      write_text(dir / (name + ".ext"), ext);
      run_ok({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-subj", "/CN=" + cn, "-keyout", p((name + ".key").c_str()), "-out",
              p((name + ".csr").c_str())});
      run_ok({"openssl", "x509", "-req", "-in", p((name + ".csr").c_str()), "-CA",
              p((issuer + ".pem").c_str()), "-CAkey", p((issuer + ".key").c_str()),
              "-CAcreateserial", "-days", "2", "-extfile", p((name + ".ext").c_str()), "-out",
              p((name + ".pem").c_str())});
    };
    issue("server", "localhost",
          "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    issue("client", "envd-ci", "extendedKeyUsage=clientAuth\n");
    issue("stranger", "stranger", "extendedKeyUsage=clientAuth\n", "other-ca");
    issue("misnamed", "elsewhere.example",
          "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n");
    misnamed_cert = p("misnamed.pem");
    misnamed_key = p("misnamed.key");
    stranger_cert = p("stranger.pem");
    stranger_key = p("stranger.key");
    ca = p("ca.pem");
    other_ca = p("other-ca.pem");
    server_cert = p("server.pem");
    server_key = p("server.key");
    client_cert = p("client.pem");
    client_key = p("client.key");
  }
};

// envd_grpc_bridge as a child process.
class Bridge {
 public:
  Bridge(const TestServices& services, std::vector<std::string> args,
         const std::filesystem::path& log) {
    sdk::ProcessOptions options;
    options.argv = {ENVD_GRPC_BRIDGE};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env["DOCKER_HOST"] = services.docker_host;
    int out[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    auto pid = sdk::spawn_process(options, -1, out[1], log_fd);
    ::close(out[1]);
    ::close(log_fd);
    EXPECT_TRUE(pid) << (pid ? "" : pid.error().message());
    if (pid) pid_ = *pid;
    // The first line says it listens: the port, or "ready".
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char c[64];
      ssize_t n = ::read(out[0], c, sizeof c);
      if (n <= 0) break;
      line.append(c, static_cast<size_t>(n));
    }
    ::close(out[0]);
    EXPECT_NE(line.find('\n'), std::string::npos) << "the bridge did not start: " << read_text(log);
    if (line != "ready\n") port_ = std::atoi(line.c_str());
  }
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;
  ~Bridge() { kill(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // SIGKILL: every forwarded connection drops at once, as when a daemon dies.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// Reads `fd` to its end.
inline std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// The payload of the stdout frames (stream 1) of Docker's multiplexed stream.
inline std::string stdout_of(const std::string& raw) {
  std::string out;
  std::size_t at = 0;
  while (at + 8 <= raw.size()) {
    auto size = (static_cast<std::size_t>(static_cast<unsigned char>(raw[at + 4])) << 24) |
                (static_cast<std::size_t>(static_cast<unsigned char>(raw[at + 5])) << 16) |
                (static_cast<std::size_t>(static_cast<unsigned char>(raw[at + 6])) << 8) |
                static_cast<std::size_t>(static_cast<unsigned char>(raw[at + 7]));
    if (raw[at] == 1) out += raw.substr(at + 8, size);
    at += 8 + size;
  }
  return out;
}

// A CLI test of the remote suites: the test services, a PKI made once for the
// whole suite (pki_), and envd_grpc_bridge children whose log is shown when a
// test fails.
class BridgeTest : public CliTest {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (std::filesystem::temp_directory_path() / "envd-pki-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    pki_ = new Pki;
    pki_->make(pattern);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(pki_->dir, ec);
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override {
    CliTest::SetUp();
    services_ = TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
  }
  void TearDown() override {
    if (HasFailure() && std::filesystem::exists(bridge_log())) {
      std::cerr << "bridge log:\n" << read_text(bridge_log());
    }
    CliTest::TearDown();
  }

  std::filesystem::path bridge_log() const { return home() / "bridge.log"; }

  std::unique_ptr<Bridge> start_bridge(std::vector<std::string> args = {}) {
    return std::make_unique<Bridge>(services_, std::move(args), bridge_log());
  }

  TestServices services_;
  static inline Pki* pki_ = nullptr;
};

// Runs `cat` in `container` through a hijacked exec of `engine`: 100 KB of
// stdin come back on stdout, and shutdown(SHUT_WR) on the fd reaches cat as
// the end of its input, so the exec ends. A transport that relays (TLS, ssh)
// hands out its end of a socketpair.
inline void expect_cat_echoes(sdk::DockerEngine& engine, const std::string& container,
                              const std::string& how) {
  auto deadline = [] { return sdk::deadline_after(std::chrono::seconds(10)); };
  auto created = engine.call(
      "POST", "/containers/" + container + "/exec",
      R"({"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["cat"]})", deadline());
  ASSERT_TRUE(created) << created.error().message();
  std::string id(boost::json::parse(*created).at("Id").as_string());
  auto fd = engine.hijack("POST", "/exec/" + id + "/start", R"({"Detach":false,"Tty":false})", {},
                          "tcp", deadline());
  ASSERT_TRUE(fd) << fd.error().message();
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  ASSERT_EQ(::getsockname(*fd, reinterpret_cast<sockaddr*>(&local), &len), 0);
  EXPECT_EQ(local.ss_family, AF_UNIX) << how << " the caller gets its end of a socketpair";
  std::string text = "hello " + how + "\n" + std::string(100000, 'x') + "\n";
  ASSERT_EQ(::write(*fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(::shutdown(*fd, SHUT_WR), 0);
  std::string raw = read_all(*fd);
  ::close(*fd);
  std::string echoed = stdout_of(raw);
  EXPECT_EQ(echoed.size(), text.size())
      << "raw stream of " << raw.size() << " bytes begins "
      << boost::json::serialize(boost::json::string(raw.substr(0, 80)));
  EXPECT_TRUE(echoed == text) << "cat echoed something else";
  auto inspected = engine.call("GET", "/exec/" + id + "/json", "", deadline());
  ASSERT_TRUE(inspected) << inspected.error().message();
  EXPECT_FALSE(boost::json::parse(*inspected).at("Running").as_bool());
}

}  // namespace envd::test
