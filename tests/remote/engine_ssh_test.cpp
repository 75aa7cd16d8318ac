// The Docker Engine over ssh:// (DOCKER_HOST=ssh://user@host[:port][/socket]):
// the SDK's client and envd's moby-worker builder, through a real sshd (Debian's
// openssh-server) that the test runs on 127.0.0.1 with keys made for the run.
// The remote side's `docker system dial-stdio` reaches the engine of
// tests/services through the socket path in the URL.
//
// ssh reads its configuration from the passwd entry's home, not $HOME, so the
// tests put a wrapper named `ssh` first on PATH that adds `-F <test config>`
// (the key, a private known_hosts); the SDK runs `ssh` from PATH as the
// docker CLI does.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bridge_fixture.hpp"
#include "cli_harness.hpp"
#include "envd/docker_engine.hpp"
#include "services/loopback.hpp"
#include "services/password_registry.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sdk::deadline_after;
using sdk::DockerEngine;

constexpr const char* kBase = "envd-test/busybox:latest";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// sshd on 127.0.0.1:<port>, accepting one client key for root.
class SshServer {
 public:
  explicit SshServer(const fs::path& dir) : dir_(dir) {
    fs::create_directories(dir / "bin");
    fs::create_directories("/run/sshd");  // sshd's privilege separation directory
    for (const char* key : {"host_key", "client_key"}) {
      run_ok({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (dir / key).string()});
    }
    fs::copy_file(dir / "client_key.pub", dir / "authorized_keys");
    port_ = closed_port();
    write_text(dir / "sshd_config", "Port " + std::to_string(port_) +
                                        "\nListenAddress 127.0.0.1\nHostKey " +
                                        (dir / "host_key").string() + "\nAuthorizedKeysFile " +
                                        (dir / "authorized_keys").string() +
                                        "\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
                                        "PermitRootLogin prohibit-password\n");
    write_text(dir / "ssh_config", "Host *\n  IdentityFile " + (dir / "client_key").string() +
                                       "\n  UserKnownHostsFile " + (dir / "known_hosts").string() +
                                       "\n  StrictHostKeyChecking no\n  LogLevel ERROR\n");
    write_text(dir / "bin" / "ssh",
               "#!/bin/sh\nexec /usr/bin/ssh -F '" + (dir / "ssh_config").string() + "' \"$@\"\n");
    fs::permissions(dir / "bin" / "ssh", fs::perms::owner_all);
    sdk::ProcessOptions options;
    options.argv = {"/usr/sbin/sshd", "-D", "-e", "-f", (dir / "sshd_config").string()};
    int log = ::open((dir / "sshd.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    auto pid = sdk::spawn_process(options, -1, log, log);
    ::close(log);
    EXPECT_TRUE(pid) << pid.error().message();
    if (pid) pid_ = *pid;
  }
  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;
  ~SshServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      (void)sdk::wait_process(pid_);
    }
  }

  // Up once it shows its banner.
  bool wait_until_up() const {
    for (int i = 0; i < 100; ++i) {
      sdk::ProcessOptions options;
      options.argv = {"ssh", "-o", "BatchMode=yes", "-p", std::to_string(port_), "root@127.0.0.1",
                      "true"};
      options.env["PATH"] = path();
      options.timeout = std::chrono::seconds(10);
      auto r = sdk::run_process(options);
      if (r && r->exit_code == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  int port() const { return port_; }
  // PATH with the ssh wrapper first.
  std::string path() const { return (dir_ / "bin").string() + ":" + std::getenv("PATH"); }
  std::string log() const { return read_text(dir_ / "sshd.log"); }

 private:
  fs::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

class EngineSsh : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    services_ = TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
    server_ = std::make_unique<SshServer>(home() / "sshd");
    ASSERT_TRUE(server_->wait_until_up()) << "sshd did not start: " << server_->log();
    if (const char* old = std::getenv("PATH")) saved_path_ = old;
    ::setenv("PATH", server_->path().c_str(), 1);
  }
  void TearDown() override {
    ::setenv("PATH", saved_path_.c_str(), 1);
    for (const auto& name : containers_) run_docker(services_.docker_host, {"rm", "-f", name});
    server_.reset();
    CliTest::TearDown();
  }

  // DOCKER_HOST for the test engine through the test sshd.
  std::string ssh_host(int port = 0) const {
    return "ssh://root@127.0.0.1:" + std::to_string(port ? port : server_->port()) +
           services_.docker_socket();
  }

  DockerEngine client(int port = 0) const {
    auto endpoint = sdk::parse_docker_host(ssh_host(port));
    EXPECT_TRUE(endpoint) << endpoint.error().message();
    return DockerEngine(endpoint ? *endpoint : sdk::DockerEndpoint{});
  }

  TestServices services_;
  std::unique_ptr<SshServer> server_;
  std::string saved_path_;
  std::vector<std::string> containers_;
};

TEST_F(EngineSsh, RequestsAndAHijackedExecGoThroughSsh) {
  auto engine = client();
  EXPECT_EQ(engine.endpoint().url, ssh_host());
  auto version = engine.version(deadline_after(20s));
  ASSERT_TRUE(version) << version.error().message();
  EXPECT_EQ(version->os, "linux");
  auto missing =
      engine.call("GET", "/images/envd-test/no-such-image:latest/json", "", deadline_after(20s));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found) << missing.error().message();

  std::string name = "envd_ssh_exec_" + std::to_string(::getpid());
  containers_.push_back(name);
  auto started = run_docker(services_.docker_host, {"run", "-d", "--name", name, "--network",
                                                    "none", kBase, "sleep", "300"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  expect_cat_echoes(engine, name, "over ssh");
}

TEST_F(EngineSsh, WhatSshSaysIsTheError) {
  int nobody = closed_port();
  auto refused = client(nobody).version(deadline_after(20s));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::unavailable);
  EXPECT_EQ(refused.error().message(), "cannot connect to the Docker Engine at " +
                                           ssh_host(nobody) +
                                           ": ssh: connect to host 127.0.0.1 port " +
                                           std::to_string(nobody) + ": Connection refused");

  // Reached, but the remote docker finds no engine at that socket path.
  auto endpoint = sdk::parse_docker_host("ssh://root@127.0.0.1:" + std::to_string(server_->port()) +
                                         "/nonexistent.sock");
  ASSERT_TRUE(endpoint) << endpoint.error().message();
  auto no_engine = DockerEngine(*endpoint).version(deadline_after(20s));
  ASSERT_FALSE(no_engine);
  EXPECT_TRUE(contains(no_engine.error().message(), "/nonexistent.sock"))
      << no_engine.error().message();
}

TEST_F(EngineSsh, MobyWorkerBuildsThroughSsh) {
  std::map<std::string, std::optional<std::string>> env = {
      {"DOCKER_HOST", ssh_host()}, {"PATH", server_->path()}, {"BUILDKIT_PROGRESS", std::nullopt}};
  envd_ok({"context", "create", "--name", "ssh", "--builder", "moby-worker", "--use"}, env);
  auto status = envd({"builder", "status", "--format", "json"}, env);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(contains(status.out, ") at " + ssh_host())) << status.out;

  fs::path dir = home() / "project";
  write_text(dir / "Dockerfile", std::string("FROM ") + kBase +
                                     "\nCOPY a.txt /a.txt\nRUN echo built-over-ssh > /b.txt\n");
  write_text(dir / "a.txt", "hello over ssh\n");
  fs::path tar = home() / "out.tar";
  auto built = envd({"build", "--network", "none", "--progress", "plain", "--output",
                     "type=tar,dest=" + tar.string(), dir.string()},
                    env);
  ASSERT_EQ(built.exit_code, 0) << built.err;
  auto files = run_ok({"tar", "-xOf", tar.string(), "a.txt", "b.txt"});
  EXPECT_EQ(files.out, "hello over ssh\nbuilt-over-ssh\n");
}

}  // namespace
}  // namespace envd::test
