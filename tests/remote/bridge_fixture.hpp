// Test fixtures shared by the suites that need a TLS endpoint: a PKI made by
// the openssl CLI, and envd_grpc_bridge (grpc_bridge.cpp) as a child process.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_harness.hpp"
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

}  // namespace envd::test
