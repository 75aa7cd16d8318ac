#include "envd/docker_engine.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "envd/internal/host_binding.hpp"
#include "envd/plugin_abi.h"
#include "test_support.hpp"
#include "testing/fake_engine.hpp"

namespace envd::sdk {
namespace {

using namespace std::chrono_literals;
using namespace testing;  // the fake engine (sdk/testing/fake_engine.hpp)

Deadline soon() { return deadline_after(5s); }

TEST(DockerHost, DefaultsToTheSystemSocket) {
  auto endpoint = parse_docker_host("");
  ASSERT_TRUE(endpoint) << endpoint.error().message();
  EXPECT_EQ(endpoint->url, "unix:///var/run/docker.sock");
  EXPECT_EQ(endpoint->socket_path, "/var/run/docker.sock");
}

TEST(DockerHost, AcceptsUnixSockets) {
  auto endpoint = parse_docker_host("unix:///run/user/1000/docker.sock");
  ASSERT_TRUE(endpoint) << endpoint.error().message();
  EXPECT_EQ(endpoint->socket_path, "/run/user/1000/docker.sock");
  EXPECT_EQ(endpoint->url, "unix:///run/user/1000/docker.sock");
}

TEST(DockerHost, AcceptsPlainTcpAddresses) {
  auto v4 = parse_docker_host("tcp://10.0.0.5:2375");
  ASSERT_TRUE(v4) << v4.error().message();
  EXPECT_EQ(v4->url, "tcp://10.0.0.5:2375");
  EXPECT_EQ(v4->tcp_host, "10.0.0.5");
  EXPECT_EQ(v4->tcp_port, 2375);
  EXPECT_EQ(v4->socket_path, "");
  auto v6 = parse_docker_host("tcp://[::1]:12345/");
  ASSERT_TRUE(v6) << v6.error().message();
  EXPECT_EQ(v6->url, "tcp://[::1]:12345");
  EXPECT_EQ(v6->tcp_host, "::1");
  auto named = parse_docker_host("TCP://Engine.Example.COM");
  ASSERT_TRUE(named) << named.error().message();
  EXPECT_EQ(named->url, "tcp://engine.example.com:2375") << "2375 is Docker's plain-TCP port";
}

TEST(DockerHost, RejectsTcpWithAPathOrQuery) {
  auto path = parse_docker_host("tcp://10.0.0.5:2375/v1.41");
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code(), Errc::invalid_argument);
  EXPECT_EQ(path.error().message(),
            "DOCKER_HOST 'tcp://10.0.0.5:2375/v1.41' is invalid: tcp:// takes only host[:port]; "
            "expected unix:///path/to/docker.sock, tcp://host[:port] or ssh://[user@]host[:port]");
  EXPECT_EQ(parse_docker_host("tcp://10.0.0.5:99999").error().code(), Errc::invalid_argument);
  EXPECT_EQ(parse_docker_host("tcp://").error().code(), Errc::invalid_argument);
}

TEST(DockerHost, RefusesOtherSchemesAsUnsupported) {
  auto endpoint = parse_docker_host("npipe:////./pipe/docker_engine");
  ASSERT_FALSE(endpoint);
  EXPECT_EQ(endpoint.error().code(), Errc::unsupported);
  EXPECT_EQ(endpoint.error().message(),
            "DOCKER_HOST 'npipe:////./pipe/docker_engine' uses npipe://, which envd does not "
            "support: only unix://, tcp:// and ssh:// are (e.g. unix:///var/run/docker.sock)");
  EXPECT_EQ(parse_docker_host("fd://").error().code(), Errc::unsupported);
}

TEST(DockerHost, AcceptsSshWithUserPortAndRemoteSocket) {
  auto plain = parse_docker_host("ssh://me@host.example");
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(plain->url, "ssh://me@host.example");
  EXPECT_EQ(plain->tcp_host, "host.example");
  EXPECT_EQ(plain->tcp_port, 0) << "0: ssh's own default port";
  EXPECT_EQ(plain->socket_path, "");
  auto full = parse_docker_host("ssh://me@10.0.0.5:2222/run/user/1000/docker.sock");
  ASSERT_TRUE(full) << full.error().message();
  EXPECT_EQ(full->url, "ssh://me@10.0.0.5:2222/run/user/1000/docker.sock");
  EXPECT_EQ(full->tcp_port, 2222);
  EXPECT_EQ(parse_docker_host("ssh://host/").value().url, "ssh://host");
  auto query = parse_docker_host("ssh://host?x=1");
  ASSERT_FALSE(query);
  EXPECT_EQ(query.error().message(),
            "DOCKER_HOST 'ssh://host?x=1' is invalid: ssh:// takes "
            "[user@]host[:port][/path/to/remote.sock]");
}

// The remote socket path reaches the remote user's shell (ssh joins its
// command into one line): nothing a shell would interpret is accepted.
TEST(DockerHost, SshRefusesARemotePathTheRemoteShellWouldInterpret) {
  for (std::string path : {"/run/x.sock;reboot", "/run/$(id).sock", "/run/`id`", "/run/a'b",
                           "/run/a|b", "/run/a&b", "/run/a>b"}) {
    auto parsed = parse_docker_host("ssh://host" + path);
    ASSERT_FALSE(parsed) << path;
    EXPECT_NE(parsed.error().message().find("the remote shell would read anything else"),
              std::string::npos)
        << parsed.error().message();
  }
  EXPECT_FALSE(parse_docker_host("ssh://host/run/a b.sock"));  // the URL grammar refuses spaces
  EXPECT_TRUE(parse_docker_host("ssh://host/run/user/1000/docker-rootless_1.sock"));
}

// The TLS variables as the docker CLI reads them. Every test sets all of them.
class DockerTlsSettings : public ::testing::Test {
 protected:
  using Env = std::map<std::string, std::optional<std::string>>;
  static Env tls_env(Env extra) {
    Env env = {{"DOCKER_HOST", std::nullopt},   {"DOCKER_TLS_VERIFY", std::nullopt},
               {"DOCKER_TLS", std::nullopt},    {"DOCKER_CERT_PATH", std::nullopt},
               {"DOCKER_CONFIG", std::nullopt}, {"HOME", std::nullopt}};
    for (auto& [name, value] : extra) env[name] = value;
    return env;
  }
  fs::path certs(const std::vector<std::string>& files) {
    for (const auto& name : files) dir_.write(name, "PEM " + name, fs::perms::owner_read);
    return dir_.path();
  }
  TempDir dir_;
};

TEST_F(DockerTlsSettings, VerifyReadsTheCertPathAndDefaultsToPort2376) {
  fs::path dir = certs({"ca.pem", "cert.pem", "key.pem"});
  ScopedEnv env(tls_env({{"DOCKER_HOST", "tcp://engine.example"},
                         {"DOCKER_TLS_VERIFY", "1"},
                         {"DOCKER_CERT_PATH", dir.string()}}));
  auto settings = docker_settings_from_env();
  ASSERT_TRUE(settings) << settings.error().message();
  EXPECT_EQ(settings->endpoint.url, "tcp://engine.example:2376") << "2376 is Docker's TLS port";
  ASSERT_TRUE(settings->tls);
  EXPECT_TRUE(settings->tls->verify);
  EXPECT_EQ(settings->tls->ca_file, (dir / "ca.pem").string());
  EXPECT_EQ(settings->tls->cert_file, (dir / "cert.pem").string());
  EXPECT_EQ(settings->tls->key_file, (dir / "key.pem").string());
  auto engine = DockerEngine::from_env();
  ASSERT_TRUE(engine) << engine.error().message();
  ASSERT_NE(engine->tls(), nullptr);
  EXPECT_EQ(engine->tls()->ca_file, (dir / "ca.pem").string());
}

TEST_F(DockerTlsSettings, AnExplicitPortIsKept) {
  fs::path dir = certs({"ca.pem"});
  ScopedEnv env(tls_env({{"DOCKER_HOST", "tcp://10.0.0.5:2375"},
                         {"DOCKER_TLS_VERIFY", "1"},
                         {"DOCKER_CERT_PATH", dir.string()}}));
  auto settings = docker_settings_from_env();
  ASSERT_TRUE(settings) << settings.error().message();
  EXPECT_EQ(settings->endpoint.url, "tcp://10.0.0.5:2375");
  ASSERT_TRUE(settings->tls);
  EXPECT_EQ(settings->tls->cert_file, "") << "no cert.pem: no client certificate";
}

TEST_F(DockerTlsSettings, DockerTlsAloneNeedsNoFilesAndDefaultsToLocalhost) {
  ScopedEnv env(tls_env({{"DOCKER_TLS", "1"}, {"DOCKER_CERT_PATH", "/nonexistent/certs"}}));
  auto settings = docker_settings_from_env();
  ASSERT_TRUE(settings) << settings.error().message();
  EXPECT_EQ(settings->endpoint.url, "tcp://localhost:2376") << "the docker CLI's TLS default";
  ASSERT_TRUE(settings->tls);
  EXPECT_FALSE(settings->tls->verify);
  EXPECT_EQ(settings->tls->ca_file, "");
}

TEST_F(DockerTlsSettings, AUnixSocketIgnoresTls) {
  ScopedEnv env(tls_env({{"DOCKER_HOST", "unix:///run/docker.sock"},
                         {"DOCKER_TLS_VERIFY", "1"},
                         {"DOCKER_CERT_PATH", "/nonexistent/certs"}}));
  auto settings = docker_settings_from_env();
  ASSERT_TRUE(settings) << settings.error().message();
  EXPECT_EQ(settings->endpoint.url, "unix:///run/docker.sock");
  EXPECT_FALSE(settings->tls);
}

// A context's runner address takes TLS from the same variables whatever
// DOCKER_HOST is, as `docker -H tcp://... ` does; it once got TLS only when
// DOCKER_HOST was tcp:// or unset, and spoke plain TCP to a TLS Engine.
TEST_F(DockerTlsSettings, AnAddressOfEnvdsOwnTakesTlsWhateverDockerHostIs) {
  ScopedEnv env(tls_env({{"DOCKER_HOST", "unix:///run/docker.sock"},
                         {"DOCKER_TLS", "1"},
                         {"DOCKER_CERT_PATH", "/nonexistent/certs"}}));
  auto settings = docker_settings_for("tcp://engine.example");
  ASSERT_TRUE(settings) << settings.error().message();
  EXPECT_EQ(settings->endpoint.url, "tcp://engine.example:2376") << "TLS's default port";
  ASSERT_TRUE(settings->tls);
  EXPECT_FALSE(settings->tls->verify);
  auto socket = docker_settings_for("unix:///other.sock");
  ASSERT_TRUE(socket) << socket.error().message();
  EXPECT_FALSE(socket->tls) << "a socket takes no TLS";
}

TEST_F(DockerTlsSettings, AnAddressOfEnvdsOwnWithoutTlsVariablesIsPlain) {
  ScopedEnv env(tls_env({{"DOCKER_HOST", "tcp://127.0.0.1:2376"}, {"DOCKER_TLS", ""}}));
  auto settings = docker_settings_for("tcp://engine.example");
  ASSERT_TRUE(settings) << settings.error().message();
  EXPECT_EQ(settings->endpoint.url, "tcp://engine.example:2375");
  EXPECT_FALSE(settings->tls) << "an empty DOCKER_TLS is unset, as the docker CLI reads it";
}

TEST_F(DockerTlsSettings, SshIgnoresTls) {
  ScopedEnv env(tls_env({{"DOCKER_HOST", "ssh://me@host"},
                         {"DOCKER_TLS_VERIFY", "1"},
                         {"DOCKER_CERT_PATH", "/nonexistent/certs"}}));
  auto settings = docker_settings_from_env();
  ASSERT_TRUE(settings) << settings.error().message();
  EXPECT_EQ(settings->endpoint.url, "ssh://me@host");
  EXPECT_FALSE(settings->tls);
}

TEST_F(DockerTlsSettings, TheCertPathDefaultsToDockerConfigThenHome) {
  fs::path dir = certs({"ca.pem"});
  {
    ScopedEnv env(tls_env(
        {{"DOCKER_HOST", "tcp://h"}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CONFIG", dir.string()}}));
    auto settings = docker_settings_from_env();
    ASSERT_TRUE(settings) << settings.error().message();
    EXPECT_EQ(settings->tls->ca_file, (dir / "ca.pem").string());
  }
  ScopedEnv env(
      tls_env({{"DOCKER_HOST", "tcp://h"}, {"DOCKER_TLS_VERIFY", "1"}, {"HOME", "/nonexistent"}}));
  auto settings = docker_settings_from_env();
  ASSERT_FALSE(settings);
  EXPECT_EQ(settings.error().code(), Errc::not_found);
  EXPECT_EQ(settings.error().message(),
            "DOCKER_TLS_VERIFY is set, but the CA certificate '/nonexistent/.docker/ca.pem' does "
            "not exist (the directory is the default, ~/.docker; set DOCKER_CERT_PATH to the "
            "directory of ca.pem, cert.pem and key.pem)");
}

TEST_F(DockerTlsSettings, ACertificateWithoutItsKeyIsRefused) {
  fs::path dir = certs({"ca.pem", "cert.pem"});
  ScopedEnv env(tls_env(
      {{"DOCKER_HOST", "tcp://h"}, {"DOCKER_TLS", "1"}, {"DOCKER_CERT_PATH", dir.string()}}));
  auto engine = DockerEngine::from_env();
  ASSERT_FALSE(engine);
  EXPECT_EQ(engine.error().code(), Errc::invalid_argument);
  EXPECT_EQ(engine.error().message(), "DOCKER_TLS is set and '" + (dir / "cert.pem").string() +
                                          "' exists, but '" + (dir / "key.pem").string() +
                                          "' does not: a client certificate needs both cert.pem "
                                          "and key.pem");
}

// The files are read at the first call, before any connection.
TEST_F(DockerTlsSettings, ACaFileThatIsNotPemFailsTheFirstCall) {
  fs::path dir = certs({"ca.pem"});
  ScopedEnv env(tls_env({{"DOCKER_HOST", "tcp://127.0.0.1:1"},
                         {"DOCKER_TLS_VERIFY", "1"},
                         {"DOCKER_CERT_PATH", dir.string()}}));
  auto engine = DockerEngine::from_env();
  ASSERT_TRUE(engine) << engine.error().message();
  auto version = engine->version(deadline_after(5s));
  ASSERT_FALSE(version);
  EXPECT_EQ(version.error().code(), Errc::invalid_argument);
  EXPECT_EQ(
      version.error().message().rfind(
          "cannot use the Docker TLS CA certificate '" + (dir / "ca.pem").string() + "': ", 0),
      0u)
      << version.error().message();
}

TEST(DockerHost, RejectsMalformedValues) {
  auto bare = parse_docker_host("/var/run/docker.sock");
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.error().code(), Errc::invalid_argument);
  EXPECT_EQ(bare.error().message(),
            "DOCKER_HOST '/var/run/docker.sock' is invalid: it has no scheme; expected "
            "unix:///path/to/docker.sock, tcp://host[:port] or ssh://[user@]host[:port]");
  EXPECT_EQ(parse_docker_host("unix://").error().code(), Errc::invalid_argument);
  EXPECT_EQ(parse_docker_host("unix:///" + std::string(200, 'x')).error().code(),
            Errc::invalid_argument);
}

TEST(DockerHost, FromEnvReadsDockerHost) {
  ::setenv("DOCKER_HOST", "unix:///tmp/somewhere.sock", 1);
  auto engine = DockerEngine::from_env();
  ::unsetenv("DOCKER_HOST");
  ASSERT_TRUE(engine) << engine.error().message();
  EXPECT_EQ(engine->endpoint().url, "unix:///tmp/somewhere.sock");
}

TEST(DockerContainerName, FollowsDockersRule) {
  EXPECT_TRUE(is_docker_container_name("envd_buildkitd"));
  EXPECT_TRUE(is_docker_container_name("a1.b-c_d"));
  EXPECT_FALSE(is_docker_container_name("a"));
  EXPECT_FALSE(is_docker_container_name("_x"));
  EXPECT_FALSE(is_docker_container_name("a/b"));
  EXPECT_FALSE(is_docker_container_name(""));
}

TEST(DockerEngineClient, UsesTheLowerOfBothApiVersionsAndPingsOnce) {
  FakeEngine fake([](int fd, const Received&) { send_all(fd, response(200, "OK", "{}")); }, "1.40");
  auto engine = fake.engine();
  ASSERT_TRUE(engine.request("GET", "/version", "", soon()));
  ASSERT_TRUE(engine.request("GET", "/info", "", soon()));
  auto version = engine.api_version(soon());
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, "1.40");
  EXPECT_EQ(fake.pings(), 1);
  auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target(), "/v1.40/version");
  EXPECT_EQ(seen[1].target(), "/v1.40/info");
}

TEST(DockerEngineClient, KeepsItsOwnVersionWithANewerDaemon) {
  FakeEngine fake([](int fd, const Received&) { send_all(fd, response(200, "OK", "{}")); }, "1.45");
  auto engine = fake.engine();
  ASSERT_TRUE(engine.request("GET", "/version", "", soon()));
  EXPECT_EQ(fake.requests().at(0).target(), "/v1.41/version");
}

TEST(DockerEngineClient, OneClientServesSeveralThreads) {
  FakeEngine fake([](int fd, const Received& r) { send_all(fd, response(200, "OK", r.target())); });
  auto engine = fake.engine();
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        std::string path = "/t" + std::to_string(t) + "/" + std::to_string(i);
        auto answer = engine.request("GET", path, "", soon());
        if (answer && answer->body == "/v1.41" + path) ++good;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good, 20);
  EXPECT_EQ(fake.requests().size(), 20u);
}

TEST(DockerEngineClient, SendsJsonAndReturnsStatusAndBody) {
  FakeEngine fake(
      [](int fd, const Received&) { send_all(fd, response(201, "Created", R"({"Id":"abc"})")); });
  auto engine = fake.engine();
  auto answer = engine.request("POST", "/containers/create?name=x", R"({"Image":"i"})", soon());
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(answer->status, 201);
  EXPECT_EQ(answer->body, R"({"Id":"abc"})");
  auto seen = fake.requests().at(0);
  EXPECT_EQ(seen.target(), "/v1.41/containers/create?name=x");
  EXPECT_TRUE(seen.head.rfind("POST ", 0) == 0);
  EXPECT_TRUE(seen.has_header("Content-Type: application/json")) << seen.head;
  EXPECT_EQ(seen.body, R"({"Image":"i"})");
}

TEST(DockerEngineClient, MapsErrorsToTheDaemonsMessage) {
  FakeEngine fake([](int fd, const Received& r) {
    if (r.target().find("/images/") != std::string::npos) {
      send_all(fd, response(404, "Not Found", R"({"message":"No such image: nope:latest"})"));
    } else if (r.target().find("/containers/") != std::string::npos) {
      send_all(fd, response(409, "Conflict", R"({"message":"name in use"})"));
    } else if (r.target().find("/info") != std::string::npos) {
      send_all(fd, response(500, "Internal Server Error", "plain failure\n"));
    } else if (r.target().find("/networks") != std::string::npos) {
      send_all(fd,
               response(404, "Not Found", "<!DOCTYPE HTML>\n<html><p>File not found</p></html>\n"));
    } else if (r.target().find("/volumes") != std::string::npos) {
      send_all(fd, response(502, "Bad Gateway", ""));
    } else {
      send_all(fd, response(500, "Internal Server Error", "first line\nsecond line\n"));
    }
  });
  auto engine = fake.engine();
  auto missing = engine.call("GET", "/images/nope:latest/json", "", soon());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found);
  EXPECT_EQ(missing.error().message(),
            "the Docker Engine at " + fake.url() + ": No such image: nope:latest");
  auto conflict = engine.call("POST", "/containers/create", "{}", soon());
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code(), Errc::already_exists);
  auto broken = engine.call("GET", "/info", "", soon());
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code(), Errc::internal);
  EXPECT_EQ(broken.error().message(),
            "the Docker Engine at " + fake.url() + ": GET /info: HTTP status 500: plain failure");
  // What answers is not an Engine (a web server, a proxy): the request and
  // the status are said, never a page of HTML.
  auto page = engine.call("GET", "/networks", "", soon());
  ASSERT_FALSE(page);
  EXPECT_EQ(page.error().code(), Errc::not_found);
  EXPECT_EQ(page.error().message(), "the Docker Engine at " + fake.url() +
                                        ": GET /networks: HTTP status 404 and an HTML page, not "
                                        "the Engine API's error");
  auto empty = engine.call("GET", "/volumes", "", soon());
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "the Docker Engine at " + fake.url() +
                                         ": GET /volumes: HTTP status 502 with no explanation");
  auto lines = engine.call("DELETE", "/build/prune", "", soon());
  ASSERT_FALSE(lines);
  EXPECT_EQ(lines.error().message(),
            "the Docker Engine at " + fake.url() +
                ": DELETE /build/prune: HTTP status 500 and 23 bytes of text, not the Engine "
                "API's error");
  auto raw = engine.request("GET", "/images/x/json", "", soon());
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 404);
}

// What would end the request line or start a header is refused before any
// connection: a path is the caller's to escape.
TEST(DockerEngineClient, APathWithASpaceOrAControlCharacterIsRefused) {
  DockerEngine engine(DockerEndpoint{.url = "unix:///nonexistent/envd/x.sock",
                                     .socket_path = "/nonexistent/envd/x.sock"});
  for (const char* path : {"/images/a b/json", "/images/a\r\nX: y/json", "/images/\x7f/json"}) {
    auto answer = engine.request("GET", path, "", soon());
    ASSERT_FALSE(answer);
    EXPECT_EQ(answer.error().code(), Errc::invalid_argument) << answer.error().message();
    EXPECT_NE(answer.error().message().find("a space or a control character in a URL path"),
              std::string::npos);
  }
}

TEST(DockerEngineClient, AMissingSocketIsUnavailable) {
  DockerEngine engine(DockerEndpoint{.url = "unix:///nonexistent/envd/x.sock",
                                     .socket_path = "/nonexistent/envd/x.sock"});
  auto answer = engine.request("GET", "/version", "", soon());
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), Errc::unavailable);
  EXPECT_EQ(answer.error().message(),
            "cannot connect to the Docker Engine at unix:///nonexistent/envd/x.sock: no such file "
            "or directory");
}

TEST(DockerEngineClient, ARefusedConnectionIsUnavailable) {
  char tmpl[] = "/tmp/envd-refused-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string path = dir + "/docker.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);  // bound, never listening: connect() is refused
  DockerEngine engine(DockerEndpoint{.url = "unix://" + path, .socket_path = path});
  auto answer = engine.request("GET", "/version", "", soon());
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), Errc::unavailable);
  EXPECT_EQ(answer.error().message(),
            "cannot connect to the Docker Engine at unix://" + path + ": connection refused");
}

TEST(DockerEngineClient, ARefusedTcpPortIsUnavailable) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // released: nobody listens there
  std::string url = "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto endpoint = parse_docker_host(url);
  ASSERT_TRUE(endpoint);
  DockerEngine engine(*endpoint);
  auto answer = engine.request("GET", "/version", "", soon());
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), Errc::unavailable);
  EXPECT_EQ(answer.error().message(),
            "cannot connect to the Docker Engine at " + url + ": connection refused");
}

TEST(DockerEngineClient, AnUnresolvableTcpHostIsUnavailable) {
  auto endpoint = parse_docker_host("tcp://no-such-host.invalid:2375");
  ASSERT_TRUE(endpoint);
  DockerEngine engine(*endpoint);
  auto answer = engine.request("GET", "/version", "", soon());
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), Errc::unavailable);
  EXPECT_EQ(answer.error().message().rfind("cannot connect to the Docker Engine at "
                                           "tcp://no-such-host.invalid:2375: cannot resolve "
                                           "'no-such-host.invalid': ",
                                           0),
            0u)
      << answer.error().message();
}

TEST(DockerEngineClient, ASilentDaemonTimesOut) {
  FakeEngine fake([](int fd, const Received&) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 3000);  // until the client gives up and closes
  });
  auto engine = fake.engine();
  auto start = std::chrono::steady_clock::now();
  auto answer = engine.request("GET", "/version", "", deadline_after(300ms));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), Errc::timeout);
  EXPECT_EQ(answer.error().message(),
            "the Docker Engine at " + fake.url() + " did not answer GET /version in time");
  EXPECT_LT(took, 2s);
}

std::string chunked_response(const std::vector<std::string>& chunks) {
  std::string out =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const auto& c : chunks) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", c.size());
    out += std::string(size) + "\r\n" + c + "\r\n";
  }
  return out + "0\r\n\r\n";
}

TEST(DockerEngineClient, StreamsLinesAcrossChunks) {
  FakeEngine fake([](int fd, const Received&) {
    send_all(fd, chunked_response({R"({"status":"a"})"
                                   "\n"
                                   R"({"sta)",
                                   R"(tus":"b"})"
                                   "\r\n",
                                   R"({"status":"c"})"}));
  });
  auto engine = fake.engine();
  std::vector<std::string> lines;
  auto status = engine.stream(
      "POST", "/images/create?fromImage=x", "", {}, StreamMode::lines,
      [&](std::string_view line) {
        lines.emplace_back(line);
        return true;
      },
      soon());
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(*status, 200);
  EXPECT_EQ(lines, (std::vector<std::string>{R"({"status":"a"})", R"({"status":"b"})",
                                             R"({"status":"c"})"}));
}

// Streams GET `path` in chunks into `all`.
Result<int> stream_chunks(DockerEngine& engine, const std::string& path, std::string& all) {
  return engine.stream(
      "GET", path, "", {}, StreamMode::chunks,
      [&](std::string_view data) {
        all += data;
        return true;
      },
      soon());
}

TEST(DockerEngineClient, StreamsChunksAndStopsWhenAsked) {
  FakeEngine fake([](int fd, const Received&) {
    send_all(fd, chunked_response({"one\n", "two\n"}));
  });
  auto engine = fake.engine();
  std::string all;
  auto status = stream_chunks(engine, "/events", all);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(all, "one\ntwo\n");
  auto stopped = engine.stream(
      "GET", "/events", "", {}, StreamMode::lines, [](std::string_view) { return false; }, soon());
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().code(), Errc::cancelled);
}

// A live stream (followed logs, events, a push's progress) reaches the
// caller as it arrives, not when 64 KiB have or the body ends: the fake
// Engine holds the rest of its body until the caller has the first chunk.
TEST(DockerEngineClient, ALiveStreamArrivesAsItComes) {
  auto first_seen = std::make_shared<std::atomic<bool>>(false);
  auto held_until_seen = std::make_shared<std::atomic<bool>>(false);
  FakeEngine fake([first_seen, held_until_seen](int fd, const Received&) {
    const std::string whole = chunked_response({"one\n", "two\n"});
    const auto second = whole.find("4\r\ntwo");
    send_all(fd, whole.substr(0, second));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!*first_seen && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    *held_until_seen = first_seen->load();
    send_all(fd, whole.substr(second));
  });
  auto engine = fake.engine();
  std::string all;
  auto status = engine.stream(
      "GET", "/containers/x/logs?follow=1", "", {}, StreamMode::chunks,
      [&](std::string_view data) {
        all += data;
        if (all.find("one\n") != std::string::npos) *first_seen = true;
        return true;
      },
      soon());
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(all, "one\ntwo\n");
  EXPECT_TRUE(*held_until_seen) << "the first chunk reached the caller only with the rest";
}

// An Engine that stops (or is killed) in the middle of a followed log: the
// connection was lost, not answered badly.
TEST(DockerEngineClient, AStreamCutShortSaysTheConnectionClosed) {
  FakeEngine fake([](int fd, const Received&) {
    const std::string whole = chunked_response({"one\n", "two\n"});
    send_all(fd, whole.substr(0, whole.find("4\r\ntwo")));
  });
  auto engine = fake.engine();
  std::string all;
  auto status = stream_chunks(engine, "/containers/x/logs?follow=1", all);
  ASSERT_FALSE(status);
  EXPECT_EQ(all, "one\n");
  EXPECT_EQ(status.error().code(), Errc::unavailable);
  EXPECT_EQ(status.error().message(),
            "the Docker Engine at " + fake.url() +
                " closed the connection in the middle of its answer to GET "
                "/containers/x/logs?follow=1");
}

TEST(DockerEngineClient, AStreamThatFailsReportsTheMessage) {
  FakeEngine fake([](int fd, const Received&) {
    send_all(fd, response(404, "Not Found", R"({"message":"pull access denied for x"})"));
  });
  auto engine = fake.engine();
  bool called = false;
  auto status = engine.stream(
      "POST", "/images/create?fromImage=x", "", {}, StreamMode::lines,
      [&](std::string_view) {
        called = true;
        return true;
      },
      soon());
  ASSERT_FALSE(status);
  EXPECT_FALSE(called);
  EXPECT_EQ(status.error().message(),
            "the Docker Engine at " + fake.url() + ": pull access denied for x");
}

TEST(DockerEngineClient, UploadsABodyFromAnFdChunked) {
  FakeEngine fake([](int fd, const Received& r) {
    send_all(fd, chunked_response({R"({"stream":"Loaded image: x:latest"})"
                                   "\n",
                                   "size " + std::to_string(r.body.size()) + "\n"}));
  });
  std::string payload;
  for (int i = 0; i < 300000; ++i) payload.push_back(static_cast<char>('a' + i % 26));
  std::string file = fake.dir() + "/image.tar";
  {
    FILE* f = std::fopen(file.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(payload.data(), 1, payload.size(), f);
    std::fclose(f);
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto engine = fake.engine();
  std::vector<std::string> lines;
  auto status = engine.upload(
      "POST", "/images/load?quiet=1", "application/x-tar", body_from_fd(fd), StreamMode::lines,
      [&](std::string_view line) {
        lines.emplace_back(line);
        return true;
      },
      soon());
  ::close(fd);
  ASSERT_TRUE(status) << status.error().message();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "size 300000");
  auto seen = fake.requests().at(0);
  EXPECT_EQ(seen.body, payload);
  EXPECT_TRUE(seen.has_header("Content-Type: application/x-tar")) << seen.head;
}

TEST(DockerEngineClient, AnUploadSourceErrorAbortsTheCall) {
  FakeEngine fake([](int fd, const Received&) { send_all(fd, response(200, "OK", "{}")); });
  auto engine = fake.engine();
  auto status = engine.upload(
      "POST", "/images/load", "application/x-tar",
      [](char*, std::size_t) -> Result<std::size_t> {
        return Error(Errc::internal, "cannot read image.tar: gone");
      },
      StreamMode::lines, [](std::string_view) { return true; }, soon());
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().message(), "cannot read image.tar: gone");
}

// An Engine that stops reading an upload's body (a hung daemon, an image
// load it never takes) cannot keep the call past the host's cancellation:
// the write is cut, and no wait for the answer to the body cut short
// follows it (that wait lasted until the deadline, a day for a load).
TEST(DockerEngineClient, AnUploadTheEngineStopsReadingEndsAtTheHostsCancellation) {
  // Takes the upload's head, then reads nothing more until the call ended.
  std::promise<void> call_ended;
  std::shared_future<void> ended = call_ended.get_future().share();
  FakeEngine fake([ended](int, const Received&) { ended.wait(); }, "1.41", FakeEngine::Body::left);
  std::atomic<bool> cancelled{false};
  envd_host_api host{};
  host.struct_size = sizeof host;
  host.context = &cancelled;
  host.cancelled = [](void* context) -> int32_t {
    return static_cast<std::atomic<bool>*>(context)->load() ? 1 : 0;
  };
  internal::bind_host(&host);
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    cancelled = true;
  });
  std::vector<char> endless(1 << 16, 'x');
  const auto begin = std::chrono::steady_clock::now();
  auto status = fake.engine().upload(
      "POST", "/images/load", "application/x-tar",
      [&](char* buffer, std::size_t capacity) -> Result<std::size_t> {
        std::size_t n = std::min(capacity, endless.size());
        std::memcpy(buffer, endless.data(), n);
        return n;
      },
      StreamMode::lines, [](std::string_view) { return true; }, deadline_after(60s));
  const auto took = std::chrono::steady_clock::now() - begin;
  call_ended.set_value();
  canceller.join();
  internal::bind_host(nullptr);

  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), Errc::cancelled) << status.error().message();
  EXPECT_LT(took, 5s);
}

TEST(DockerEngineClient, HijackLosesNoByteSentRightAfterTheHead) {
  FakeEngine fake([](int fd, const Received&) {
    // The head and the first bytes of the new protocol in one write, as
    // dockerd does when it starts HTTP/2 at once.
    send_all(fd, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nEARLY-BYTES");
    std::string got;
    if (read_exact(fd, got, 4)) send_all(fd, "echo:" + got);
  });
  auto engine = fake.engine();
  auto fd = engine.hijack("POST", "/grpc", "", {{"X-Test", "1"}, {"X-Test", "2"}}, "h2c", soon());
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_TRUE(::fcntl(*fd, F_GETFD) & FD_CLOEXEC);
  EXPECT_FALSE(::fcntl(*fd, F_GETFL) & O_NONBLOCK);
  std::string early;
  ASSERT_TRUE(read_exact(*fd, early, 11));
  EXPECT_EQ(early, "EARLY-BYTES");
  send_all(*fd, "ping");
  std::string echo;
  ASSERT_TRUE(read_exact(*fd, echo, 9));
  EXPECT_EQ(echo, "echo:ping");
  ::close(*fd);
  auto seen = fake.requests().at(0);
  EXPECT_EQ(seen.target(), "/v1.41/grpc");
  EXPECT_TRUE(seen.has_header("Connection: Upgrade")) << seen.head;
  EXPECT_TRUE(seen.has_header("Upgrade: h2c")) << seen.head;
  EXPECT_TRUE(seen.has_header("X-Test: 1") && seen.has_header("X-Test: 2")) << seen.head;
}

// The head is taken in as much as has arrived, never past its blank line:
// here the blank line is split across writes at every place it can be, and
// the upgraded protocol's bytes follow in the same write as its last part.
TEST(DockerEngineClient, HijackFindsTheHeadsEndSplitAcrossWrites) {
  const std::string head = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  for (std::size_t cut :
       {std::size_t{10}, head.size() - 4, head.size() - 3, head.size() - 2, head.size() - 1}) {
    FakeEngine fake([&](int fd, const Received&) {
      send_all(fd, head.substr(0, cut));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      send_all(fd, head.substr(cut) + "AFTER");
    });
    auto engine = fake.engine();
    auto fd = engine.hijack_unversioned("POST", "/grpc", "", {}, "h2c", soon());
    ASSERT_TRUE(fd) << "cut at " << cut << ": " << fd.error().message();
    std::string after;
    ASSERT_TRUE(read_exact(*fd, after, 5)) << "cut at " << cut;
    EXPECT_EQ(after, "AFTER") << "cut at " << cut;
    ::close(*fd);
  }
}

TEST(DockerEngineClient, UnversionedHijackSendsThePathAsGivenWithoutAPing) {
  FakeEngine fake([](int fd, const Received&) {
    send_all(fd, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nH2");
  });
  auto engine = fake.engine();
  auto fd = engine.hijack_unversioned("POST", "/grpc", "", {}, "h2c", soon());
  ASSERT_TRUE(fd) << fd.error().message();
  std::string first;
  ASSERT_TRUE(read_exact(*fd, first, 2));
  EXPECT_EQ(first, "H2");
  ::close(*fd);
  EXPECT_EQ(fake.pings(), 0);
  ASSERT_EQ(fake.requests().size(), 1U);
  EXPECT_EQ(fake.requests().at(0).target(), "/grpc");
  EXPECT_TRUE(fake.requests().at(0).has_header("Upgrade: h2c"));
}

TEST(DockerEngineClient, UnversionedHijackRefusalIsAnError) {
  FakeEngine fake([](int fd, const Received&) {
    send_all(fd, response(404, "Not Found", R"({"message":"page not found"})"));
  });
  auto engine = fake.engine();
  auto fd = engine.hijack_unversioned("POST", "/grpc", "", {}, "h2c", soon());
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Errc::not_found);
  EXPECT_EQ(fd.error().message(), "the Docker Engine at " + fake.url() + ": page not found");
}

TEST(DockerEngineClient, HijackAccepts200FromOldDaemons) {
  FakeEngine fake([](int fd, const Received&) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nraw");
  });
  auto engine = fake.engine();
  auto fd = engine.hijack("POST", "/exec/abc/start", R"({"Detach":false,"Tty":false})", {}, "tcp",
                          soon());
  ASSERT_TRUE(fd) << fd.error().message();
  std::string raw;
  ASSERT_TRUE(read_exact(*fd, raw, 3));
  EXPECT_EQ(raw, "raw");
  ::close(*fd);
  EXPECT_EQ(fake.requests().at(0).body, R"({"Detach":false,"Tty":false})");
}

TEST(DockerEngineClient, HijackRefusalIsAnErrorWithTheMessage) {
  FakeEngine fake([](int fd, const Received&) {
    send_all(fd, response(400, "Bad Request", R"({"message":"session already exists"})"));
  });
  auto engine = fake.engine();
  auto fd = engine.hijack("POST", "/session", "", {}, "h2c", soon());
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Errc::invalid_argument);
  EXPECT_EQ(fd.error().message(),
            "the Docker Engine at " + fake.url() + ": session already exists");
}

}  // namespace
}  // namespace envd::sdk
