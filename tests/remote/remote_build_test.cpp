// The remote-build walkthrough of docs/remote-build.md, end to end: a BuildKit
// Control service on 127.0.0.1:PORT (plaintext, TLS, mutual TLS) or on a unix
// socket, an envd context pointing at it, builds with local and tar outputs,
// image outputs passed through, TLS failures, the daemon going away mid-build,
// and `envd builder status`.
//
// The daemon is the Docker Engine's embedded BuildKit (fixture `engine`)
// behind envd_grpc_bridge, which the tests start and kill. envd itself gets a
// DOCKER_HOST that leads nowhere: a remote build must not need a Docker Engine.
// Certificates are made with the openssl CLI for each run.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bridge_fixture.hpp"
#include "cli_harness.hpp"
#include "services/loopback.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kBase = "envd-test/busybox:latest";

// The last line of `text` (which ends with a newline).
std::string last_line(const std::string& text) {
  if (text.size() < 2) return text;
  return text.substr(text.rfind('\n', text.size() - 2) + 1);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class RemoteBuild : public BridgeTest {
 protected:
  // A bridge behind TLS; `verify_clients` requires client certificates
  // signed by the test CA.
  std::unique_ptr<Bridge> start_tls_bridge(bool verify_clients) {
    std::vector<std::string> args = {"--tls-cert", pki_->server_cert.string(), "--tls-key",
                                     pki_->server_key.string()};
    if (verify_clients) {
      args.push_back("--client-ca");
      args.push_back(pki_->ca.string());
    }
    return start_bridge(args);
  }

  // envd with no Docker Engine in reach: remote builds do not use one.
  std::map<std::string, std::optional<std::string>> env() const {
    return {{"DOCKER_HOST", "unix://" + (home() / "no-docker.sock").string()},
            {"BUILDKIT_PROGRESS", std::nullopt}};
  }

  sdk::ProcessResult envd_run(const std::vector<std::string>& args) { return envd(args, env()); }

  void create_context(const std::string& name, std::vector<std::string> args) {
    std::vector<std::string> argv = {"context", "create", "--name", name};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.emplace_back("--use");
    auto r = envd(argv, env());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::vector<std::string> mtls_flags(const Pki& pki) const {
    return {"--builder-tls-ca",       pki.ca.string(),     "--builder-tls-cert",
            pki.client_cert.string(), "--builder-tls-key", pki.client_key.string()};
  }

  // A project whose build runs a RUN step and a COPY.
  fs::path project(const std::string& name) {
    fs::path dir = home() / name;
    write_text(dir / "Dockerfile", std::string("FROM ") + kBase +
                                       "\nCOPY greeting.txt /greeting.txt\n"
                                       "RUN echo built-remotely > /built.txt\n");
    write_text(dir / "greeting.txt", "hello from " + name + "\n");
    return dir;
  }

  // Builds `project(name)` with a local and then a tar output and checks the
  // files of both.
  void build_and_check(const std::string& name) {
    fs::path dir = project(name);
    fs::path out = home() / (name + "-out");
    auto local = envd_run({"build", "--network", "none", "--progress", "plain", "--output",
                           "type=local,dest=" + out.string(), dir.string()});
    ASSERT_EQ(local.exit_code, 0) << local.err;
    EXPECT_EQ(read_text(out / "greeting.txt"), "hello from " + name + "\n");
    EXPECT_EQ(read_text(out / "built.txt"), "built-remotely\n");

    fs::path tar = home() / (name + ".tar");
    auto tarred = envd_run({"build", "--network", "none", "--progress", "plain", "--output",
                            "type=tar,dest=" + tar.string(), dir.string()});
    ASSERT_EQ(tarred.exit_code, 0) << tarred.err;
    auto extracted = run_ok({"tar", "-xOf", tar.string(), "built.txt", "greeting.txt"});
    EXPECT_EQ(extracted.out, "built-remotely\nhello from " + name + "\n");
  }

  // A build that fails before it starts: exit 1, one line naming `endpoint`
  // and containing `reason`, within `limit`.
  void expect_connect_failure(const std::string& endpoint, const std::string& reason,
                              std::chrono::seconds limit = std::chrono::seconds(15)) {
    fs::path dir = project("refused");
    auto start = Clock::now();
    auto r = envd_run({"build", "--network", "none", "--connect-timeout", "5s", "--output",
                       "type=local,dest=" + (home() / "never").string(), dir.string()});
    EXPECT_LT(Clock::now() - start, limit);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    std::string line = last_line(r.err);
    EXPECT_EQ(line.rfind("envd: error: cannot connect to buildkitd at " + endpoint + ": ", 0), 0u)
        << r.err;
    EXPECT_TRUE(contains(line, reason)) << "expected '" << reason << "' in: " << line;
    // Nothing but the error on stderr, after the one notice a wait past 3 s
    // gives (the probe beside the Solve says it too).
    EXPECT_TRUE(r.err == line || r.err == "Waiting for buildkitd at " + endpoint +
                                              " (at most 5 s, --connect-timeout)\n" + line)
        << r.err;
    EXPECT_FALSE(fs::exists(home() / "never"));
  }

  // Starts a build whose RUN sleeps, kills the bridge while it sleeps, and
  // checks that envd fails within seconds, naming `endpoint`, without a signal.
  void expect_failure_when_daemon_dies(Bridge& bridge, const std::string& endpoint) {
    fs::path dir = home() / "sleepy";
    write_text(dir / "Dockerfile",
               std::string("FROM ") + kBase + "\nRUN echo 'sleep-'began && sleep 60\n");
    auto running = envd_background(
        {"build", "--network", "none", "--progress", "plain", "--no-cache", dir.string()}, env());
    ASSERT_TRUE(running->start_error().empty()) << running->start_error();
    // The log line reads "sleep-began"; the step's name ("'sleep-'began") does not.
    ASSERT_TRUE(running->wait_for("sleep-began")) << "the build did not reach its RUN step:\n"
                                                  << running->err();
    auto killed_at = Clock::now();
    bridge.kill();
    // envd must exit on its own; give it 20 s before calling it a hang.
    auto status = running->wait_exit(std::chrono::seconds(20));
    auto elapsed = Clock::now() - killed_at;
    const std::string& err = running->err();
    ASSERT_TRUE(status) << "envd hung after the daemon went away:\n" << err;
    EXPECT_LT(elapsed, std::chrono::seconds(10)) << err;
    ASSERT_TRUE(WIFEXITED(*status)) << "envd died by signal " << WTERMSIG(*status) << ":\n" << err;
    EXPECT_EQ(WEXITSTATUS(*status), 1) << err;
    std::string line = last_line(err);
    EXPECT_EQ(line.rfind("envd: error: ", 0), 0u) << err;
    EXPECT_TRUE(contains(line, endpoint)) << "expected " << endpoint << " in: " << line;
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  }

  // `envd builder status` reaches the embedded BuildKit through `endpoint`.
  void expect_reachable(const std::string& endpoint) {
    auto r = envd_run({"builder", "status", "--format", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto v = json::parse(r.out).as_object();
    EXPECT_EQ(v.at("reachable"), true);
    EXPECT_EQ(std::string(v.at("address").as_string()), endpoint);
    auto workers = v.at("workers").as_array();
    ASSERT_FALSE(workers.empty()) << r.out;
    EXPECT_EQ(workers[0].at("id"), "moby");
    auto table = envd_run({"builder", "status"});
    EXPECT_EQ(table.exit_code, 0) << table.err;
    EXPECT_TRUE(contains(table.out, "Builder:    " + endpoint + "\n")) << table.out;
    EXPECT_TRUE(contains(table.out, "Reachable:  yes\n")) << table.out;
    // A daemon envd does not manage says so under its state.
    EXPECT_TRUE(contains(table.out, "State:      " + std::string(v.at("state").as_string()) +
                                        "\nDetail:     " + std::string(v.at("detail").as_string()) +
                                        "\n"))
        << table.out;
    EXPECT_TRUE(contains(std::string(v.at("detail").as_string()), "envd does not manage")) << r.out;
  }

  // ... and no longer does, for `reason`.
  void expect_unreachable(const std::string& endpoint, const std::string& reason) {
    auto start = Clock::now();
    auto r = envd_run({"builder", "status", "--connect-timeout", "3s", "--format", "json"});
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    auto v = json::parse(r.out).as_object();
    EXPECT_EQ(v.at("reachable"), false);
    std::string error(v.at("error").as_string());
    EXPECT_TRUE(contains(error, "cannot connect to buildkitd at " + endpoint + ": ")) << error;
    EXPECT_TRUE(contains(error, reason)) << "expected '" << reason << "' in: " << error;
    auto table = envd_run({"builder", "status", "--connect-timeout", "3s"});
    EXPECT_EQ(table.exit_code, 1);
    EXPECT_TRUE(contains(table.out, "Reachable:  no\n")) << table.out;
    EXPECT_EQ(last_line(table.err), "envd: error: " + error + "\n");
  }
};

// ---- tcp, plaintext --------------------------------------------------------

TEST_F(RemoteBuild, TcpContextBuildsWithLocalAndTarOutputs) {
  auto bridge = start_bridge();
  create_context("remote-context",
                 {"--builder", "tcp", "--builder-address", "tcp://" + bridge->address()});
  auto ls = ls_json();
  bool listed = false;
  for (const auto& row : ls) {
    if (row.at("context") == "remote-context") {
      listed = true;
      EXPECT_EQ(std::string(row.at("builder_addr").as_string()), "tcp://" + bridge->address());
    }
  }
  EXPECT_TRUE(listed);
  build_and_check("plain-tcp");
}

TEST_F(RemoteBuild, TcpImageOutputWithPushGoesToTheDaemonUnchanged) {
  // The embedded BuildKit has no `image` exporter: its own error must reach
  // the user on one line (a real buildkitd would build and push).
  auto bridge = start_bridge();
  create_context("remote-context", {"--builder", "tcp", "--builder-address", bridge->address()});
  fs::path dir = project("pushed");
  std::string ref = services_.registry + "/envd-remote/pushed:v1";
  auto r = envd_run({"build", "--network", "none", "--progress", "plain", "--output",
                     "type=image,name=" + ref + ",push=true", dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::string line = last_line(r.err);
  EXPECT_EQ(line.rfind("envd: error: build failed on tcp://" + bridge->address() + ": ", 0), 0u)
      << r.err;
  EXPECT_TRUE(contains(line, "exporter \"image\" could not be found")) << r.err;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
}

TEST_F(RemoteBuild, TcpBuilderStatusReportsReachableThenUnreachable) {
  auto bridge = start_bridge();
  create_context("remote-context", {"--builder", "tcp", "--builder-address", bridge->address()});
  expect_reachable("tcp://" + bridge->address());
  bridge->kill();
  expect_unreachable("tcp://" + bridge->address(), "connection refused");
}

TEST_F(RemoteBuild, TcpDaemonGoingAwayMidBuildFailsWithinSeconds) {
  auto bridge = start_bridge();
  create_context("remote-context", {"--builder", "tcp", "--builder-address", bridge->address()});
  expect_failure_when_daemon_dies(*bridge, "tcp://" + bridge->address());
}

TEST_F(RemoteBuild, TcpConnectFailuresNameTheCause) {
  // Nothing listens on a killed bridge's port.
  std::string address;
  {
    auto bridge = start_bridge();
    address = bridge->address();
  }
  create_context("refused", {"--builder", "tcp", "--builder-address", address});
  expect_connect_failure("tcp://" + address, "connection refused");

  // .invalid never resolves (RFC 6761).
  create_context("nowhere", {"--builder", "tcp", "--builder-address", "no-such-host.invalid:8888"});
  expect_connect_failure("tcp://no-such-host.invalid:8888",
                         "cannot resolve 'no-such-host.invalid'");
}

// ---- tcp, TLS ----------------------------------------------------------------

TEST_F(RemoteBuild, MutualTlsBuildsAndReportsStatus) {
  auto bridge = start_tls_bridge(true);
  auto flags = mtls_flags(*pki_);
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bridge->address()});
  create_context("remote-context", flags);
  build_and_check("mtls");
  expect_reachable("tcp://" + bridge->address());
}

TEST_F(RemoteBuild, ServerOnlyTlsNeedsOnlyTheCa) {
  auto bridge = start_tls_bridge(false);
  create_context("remote-context", {"--builder", "tcp", "--builder-address", bridge->address(),
                                    "--builder-tls-ca", pki_->ca.string()});
  expect_reachable("tcp://" + bridge->address());
  // The server certificate holds DNS:localhost too; DNS names resolve.
  auto port = bridge->address().substr(bridge->address().find(':') + 1);
  create_context("by-name", {"--builder", "tcp", "--builder-address", "localhost:" + port,
                             "--builder-tls-ca", pki_->ca.string()});
  expect_reachable("tcp://localhost:" + port);
}

TEST_F(RemoteBuild, AWrongCaFailsNamingTheCa) {
  auto bridge = start_tls_bridge(true);
  Pki wrong = *pki_;
  wrong.ca = pki_->other_ca;
  auto flags = mtls_flags(wrong);
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bridge->address()});
  create_context("remote-context", flags);
  expect_connect_failure("tcp://" + bridge->address(),
                         "TLS handshake failed: the daemon's certificate is not signed by the "
                         "configured CA (tls-ca)",
                         std::chrono::seconds(4));
}

TEST_F(RemoteBuild, AMissingClientCertificateFailsSayingTheDaemonWantsOne) {
  auto bridge = start_tls_bridge(true);
  create_context("remote-context", {"--builder", "tcp", "--builder-address", bridge->address(),
                                    "--builder-tls-ca", pki_->ca.string()});
  expect_connect_failure("tcp://" + bridge->address(),
                         "requires a client certificate (set --builder-tls-cert and "
                         "--builder-tls-key)",
                         std::chrono::seconds(4));
}

TEST_F(RemoteBuild, AClientCertificateFromAnotherCaIsRejectedByTheDaemon) {
  auto bridge = start_tls_bridge(true);
  Pki stranger = *pki_;
  stranger.client_cert = pki_->stranger_cert;
  stranger.client_key = pki_->stranger_key;
  auto flags = mtls_flags(stranger);
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bridge->address()});
  create_context("remote-context", flags);
  expect_connect_failure("tcp://" + bridge->address(), "rejected the client certificate",
                         std::chrono::seconds(4));
}

TEST_F(RemoteBuild, ADaemonThatNeverAnswersHitsTheDeadline) {
  // Accepted by the kernel's backlog, never served.
  int port = 0;
  int listener = listen_loopback(&port, 8);
  std::string address = "127.0.0.1:" + std::to_string(port);
  create_context("silent", {"--builder", "tcp", "--builder-address", address});
  expect_connect_failure("tcp://" + address,
                         "the daemon accepted the connection but did not answer (no HTTP/2 "
                         "greeting: is this a BuildKit gRPC address?) (retried for 5s)",
                         std::chrono::seconds(10));
  ::close(listener);
}

TEST_F(RemoteBuild, AServerNameMismatchFailsNamingTheName) {
  auto bridge = start_tls_bridge(true);
  auto flags = mtls_flags(*pki_);
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bridge->address(),
                               "--builder-tls-servername", "wrong.example"});
  create_context("remote-context", flags);
  expect_connect_failure("tcp://" + bridge->address(),
                         "TLS handshake failed: the daemon's certificate is not valid for "
                         "'wrong.example'",
                         std::chrono::seconds(4));
}

// A server certificate that names its host only in the subject's Common
// Name is refused, as Go's clients (buildctl) refuse it: OpenSSL's fallback
// to the Common Name accepted it.
TEST_F(RemoteBuild, AServerNameOnlyInTheCommonNameIsRefused) {
  auto in = [&](const char* name) { return (pki_->dir / name).string(); };
  sdk::ProcessOptions request;
  request.argv = {"openssl", "req",           "-new", "-key",           pki_->server_key.string(),
                  "-subj",   "/CN=localhost", "-out", in("cn-only.csr")};
  auto requested = sdk::run_process(request);
  ASSERT_TRUE(requested && requested->exit_code == 0)
      << (requested ? requested->err : requested.error().message());
  sdk::ProcessOptions sign;
  sign.argv = {"openssl",
               "x509",
               "-req",
               "-in",
               in("cn-only.csr"),
               "-CA",
               pki_->ca.string(),
               "-CAkey",
               in("ca.key"),
               "-set_serial",
               "9",
               "-days",
               "2",
               "-out",
               in("cn-only.pem")};
  auto signed_cert = sdk::run_process(sign);
  ASSERT_TRUE(signed_cert && signed_cert->exit_code == 0)
      << (signed_cert ? signed_cert->err : signed_cert.error().message());
  auto bridge =
      start_bridge({"--tls-cert", in("cn-only.pem"), "--tls-key", pki_->server_key.string()});
  auto port = bridge->address().substr(bridge->address().find(':') + 1);
  create_context("cn-only", {"--builder", "tcp", "--builder-address", "localhost:" + port,
                             "--builder-tls-ca", pki_->ca.string()});
  expect_connect_failure("tcp://localhost:" + port,
                         "TLS handshake failed: the daemon's certificate has no subjectAltName, "
                         "and a name in its Common Name alone is not accepted",
                         std::chrono::seconds(4));
}

TEST_F(RemoteBuild, PlaintextAgainstATlsDaemonFailsClearly) {
  auto bridge = start_tls_bridge(false);
  create_context("remote-context", {"--builder", "tcp", "--builder-address", bridge->address()});
  expect_connect_failure("tcp://" + bridge->address(),
                         "by the daemon (does it expect TLS? set --builder-tls-ca)");
}

TEST_F(RemoteBuild, TheStoreKeepsCopiesOfTheTlsFiles) {
  // The originals move away after `context create`; the context keeps working.
  fs::path originals = home() / "certs";
  fs::create_directories(originals);
  Pki moved = *pki_;
  for (fs::path* f : {&moved.ca, &moved.client_cert, &moved.client_key}) {
    fs::path copy = originals / f->filename();
    fs::copy_file(*f, copy);
    *f = copy;
  }
  auto bridge = start_tls_bridge(true);
  auto flags = mtls_flags(moved);
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bridge->address()});
  create_context("remote-context", flags);
  fs::remove_all(originals);
  build_and_check("moved-certs");

  // inspect says which material is there, never the key itself.
  auto inspect = envd_run({"context", "inspect", "remote-context"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  std::string key = read_text(pki_->client_key);
  std::string key_body = key.substr(key.find('\n') + 1, 40);
  EXPECT_FALSE(contains(inspect.out + inspect.err, key_body)) << inspect.out;
  EXPECT_FALSE(contains(inspect.out + inspect.err, "PRIVATE KEY")) << inspect.out;
  EXPECT_TRUE(contains(inspect.out, "tls-key")) << inspect.out;

  // The copies are private to the owner.
  bool found_key = false;
  for (const auto& entry : fs::recursive_directory_iterator(config_dir())) {
    if (entry.path().filename() == "tls-key") {
      found_key = true;
      EXPECT_EQ(mode_of(entry.path()), 0600u) << entry.path();
      EXPECT_EQ(read_text(entry.path()), key);
    }
  }
  EXPECT_TRUE(found_key) << "no stored copy of tls-key under " << config_dir();
}

TEST_F(RemoteBuild, AnExportedTlsContextBuildsAfterImport) {
  auto bridge = start_tls_bridge(true);
  auto flags = mtls_flags(*pki_);
  flags.insert(flags.begin(), {"--builder", "tcp", "--builder-address", bridge->address()});
  create_context("ci", flags);
  fs::path archive = home() / "ci.envdctx";
  auto exported = envd_run({"context", "export", "ci", archive.string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  auto removed = envd_run({"context", "use", "default"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  auto rm = envd_run({"context", "rm", "ci"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  auto imported = envd_run({"context", "import", "ci-imported", archive.string()});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  auto use = envd_run({"context", "use", "ci-imported"});
  ASSERT_EQ(use.exit_code, 0) << use.err;
  build_and_check("imported");
}

// ---- unix ----------------------------------------------------------------------

// An address that is not buildkitd's is named as such at once, not retried
// to the deadline with gRPC's own words ("failed parsing HTTP/2"): a web
// server answering the HTTP/2 preface as an HTTP/1 request does, and the
// Docker Engine's socket given to the unix builder.
TEST_F(RemoteBuild, AnAddressThatIsNotBuildkitdIsNamedAsSuch) {
  // An error answer, and a 200 (which gRPC maps to the status OK, losing the
  // HTTP/1 detail: the reason read "oK").
  for (const std::string status : {"400 Bad Request", "200 OK"}) {
    SCOPED_TRACE(status);
    int port = 0;
    int listener = listen_loopback(&port, 8);
    std::atomic<bool> stop{false};
    std::thread server([&] {
      while (!stop) {
        pollfd p{listener, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int fd = ::accept(listener, nullptr, nullptr);
        if (fd < 0) continue;
        char buffer[1024];
        (void)::read(fd, buffer, sizeof buffer);
        const std::string answer = "HTTP/1.1 " + status +
                                   "\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" +
                                   status;
        (void)::write(fd, answer.data(), answer.size());
        ::close(fd);
      }
    });
    std::string address = "127.0.0.1:" + std::to_string(port);
    const std::string name = "web-" + status.substr(0, 3);
    create_context(name, {"--builder", "tcp", "--builder-address", address});
    auto start = Clock::now();
    expect_connect_failure("tcp://" + address,
                           "the daemon answered, but not in HTTP/2: this is not a BuildKit gRPC "
                           "address (an HTTP/1 server? the Docker Engine's socket is the "
                           "moby-worker builder's)");
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(3)) << "retried to the 5 s deadline";
    stop = true;
    server.join();
    ::close(listener);
  }

  std::string engine = services_.docker_host;
  ASSERT_EQ(engine.rfind("unix://", 0), 0u) << engine;
  create_context("engine-socket", {"--builder", "unix", "--builder-address", engine});
  // The Engine answers the preface with an HTTP/1 error, or closes first.
  expect_connect_failure(engine, "the Docker Engine's socket is the moby-worker builder's");
}

TEST_F(RemoteBuild, UnixContextBuildsReportsStatusAndSurvivesNothing) {
  fs::path socket = home() / "buildkitd.sock";
  auto bridge = start_bridge({"--unix", socket.string()});
  create_context("rootless",
                 {"--builder", "unix", "--builder-address", "unix://" + socket.string()});
  std::string endpoint = "unix://" + socket.string();
  auto ls = ls_json();
  for (const auto& row : ls) {
    if (row.at("context") == "rootless") {
      EXPECT_EQ(std::string(row.at("builder_addr").as_string()), endpoint);
    }
  }
  build_and_check("unix");
  expect_reachable(endpoint);

  fs::path dir = project("pushed");
  auto r = envd_run({"build", "--network", "none", "--output",
                     "type=image,name=" + services_.registry + "/x:y,push=true", dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(last_line(r.err).rfind("envd: error: build failed on " + endpoint + ": ", 0), 0u)
      << r.err;
  EXPECT_TRUE(contains(last_line(r.err), "exporter \"image\" could not be found")) << r.err;

  expect_failure_when_daemon_dies(*bridge, endpoint);
  // The killed bridge leaves its socket file behind.
  expect_unreachable(endpoint, "connection refused");
  fs::remove(socket);
  expect_unreachable(endpoint, "the socket does not exist");
}

}  // namespace
}  // namespace envd::test
