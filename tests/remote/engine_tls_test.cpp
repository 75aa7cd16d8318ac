// The Docker Engine over TLS, as DOCKER_TLS_VERIFY / DOCKER_TLS /
// DOCKER_CERT_PATH set it up: the SDK's client (requests, streams, a
// hijacked exec whose stdin is half-closed through the TLS relay), its TLS
// failures, and envd building through such an engine with the moby-worker and
// docker-container builders.
//
// The engine is the real dockerd of tests/services behind envd_grpc_bridge
// --engine-socket, which ends TLS (optionally requiring client certificates)
// and forwards the bytes to the engine's unix socket: dockerd's own TLS would
// apply to every TCP listener of the one test daemon, and the plain-TCP one is
// tested too. Certificates are made with the openssl CLI for each run.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge_fixture.hpp"
#include "cli_harness.hpp"
#include "envd/docker_engine.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using sdk::deadline_after;
using sdk::DockerEngine;

constexpr const char* kBase = "envd-test/busybox:latest";
constexpr const char* kStandin = "envd-test/buildkit-standin:1";
constexpr const char* kEngineSocketInContainer = "/run/envd-test/docker.sock";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class EngineTls : public BridgeTest {
 protected:
  void TearDown() override {
    for (const auto& name : containers_) {
      run_docker(services_.docker_host, {"rm", "-f", name});
      run_docker(services_.docker_host, {"volume", "rm", "-f", name + "_state"});
    }
    BridgeTest::TearDown();
  }

  // The engine behind TLS with `cert`; `verify_clients` requires client
  // certificates signed by the test CA.
  std::unique_ptr<Bridge> start_engine(bool verify_clients, const fs::path& cert,
                                       const fs::path& key) {
    std::vector<std::string> args = {"--engine-socket", services_.docker_socket(),
                                     "--tls-cert",      cert.string(),
                                     "--tls-key",       key.string()};
    if (verify_clients) args.insert(args.end(), {"--client-ca", pki_->ca.string()});
    return start_bridge(args);
  }
  std::unique_ptr<Bridge> start_engine(bool verify_clients = true) {
    return start_engine(verify_clients, pki_->server_cert, pki_->server_key);
  }

  // A DOCKER_CERT_PATH directory holding the given files as ca.pem, cert.pem
  // and key.pem (an empty path leaves that file out).
  fs::path cert_dir(const std::string& name, const fs::path& ca, const fs::path& cert,
                    const fs::path& key) {
    fs::path dir = home() / name;
    fs::create_directories(dir);
    if (!ca.empty()) fs::copy_file(ca, dir / "ca.pem");
    if (!cert.empty()) fs::copy_file(cert, dir / "cert.pem");
    if (!key.empty()) fs::copy_file(key, dir / "key.pem");
    return dir;
  }
  fs::path good_certs() { return cert_dir("certs", pki_->ca, pki_->client_cert, pki_->client_key); }

  // What the docker CLI would be given for a TLS engine.
  static std::map<std::string, std::optional<std::string>> tls_env(const Bridge& engine,
                                                                   const fs::path& certs,
                                                                   bool verify = true) {
    return {{"DOCKER_HOST", "tcp://" + engine.address()},
            {"DOCKER_TLS_VERIFY", verify ? std::optional<std::string>("1") : std::nullopt},
            {"DOCKER_TLS", "1"},
            {"DOCKER_CERT_PATH", certs.string()}};
  }

  // A client of `engine` as DockerEngine::from_env() makes it for tls_env()
  // (which the SDK's unit tests check): the endpoint and the files of `certs`.
  static DockerEngine client(const Bridge& engine, const fs::path& certs, bool verify = true) {
    auto endpoint = sdk::parse_docker_host("tcp://" + engine.address());
    EXPECT_TRUE(endpoint) << endpoint.error().message();
    sdk::DockerTls tls;
    tls.verify = verify;
    if (verify) tls.ca_file = (certs / "ca.pem").string();
    if (fs::exists(certs / "cert.pem")) {
      tls.cert_file = (certs / "cert.pem").string();
      tls.key_file = (certs / "key.pem").string();
    }
    return DockerEngine(endpoint ? *endpoint : sdk::DockerEndpoint{}, tls);
  }

  // GET /version through client(): the error, or "".
  static std::string version_error(const Bridge& engine, const fs::path& certs,
                                   bool verify = true) {
    auto version = client(engine, certs, verify).version(deadline_after(10s));
    return version ? "" : version.error().message();
  }

  std::map<std::string, std::optional<std::string>> envd_env(
      std::map<std::string, std::optional<std::string>> tls) const {
    tls["DOCKER_CONFIG"] = (home() / ".docker").string();
    tls["BUILDKIT_PROGRESS"] = std::nullopt;
    return tls;
  }

  // A project whose build runs a RUN step and a COPY.
  fs::path project(const std::string& name) {
    fs::path dir = home() / name;
    write_text(dir / "Dockerfile", std::string("FROM ") + kBase +
                                       "\nCOPY greeting.txt /greeting.txt\n"
                                       "RUN echo built-over-tls > /built.txt\n");
    write_text(dir / "greeting.txt", "hello from " + name + "\n");
    return dir;
  }

  // Builds `project(name)` to a tar and checks the files in it.
  // Returns the build's stderr, with ENVD_TIMINGS's lines.
  std::string build_to_tar(const std::string& name,
                           std::map<std::string, std::optional<std::string>> env) {
    fs::path dir = project(name);
    fs::path tar = home() / (name + ".tar");
    env["ENVD_TIMINGS"] = "1";
    auto built = envd({"build", "--network", "none", "--progress", "plain", "--output",
                       "type=tar,dest=" + tar.string(), dir.string()},
                      env);
    EXPECT_EQ(built.exit_code, 0) << built.err;
    auto files = run_ok({"tar", "-xOf", tar.string(), "built.txt", "greeting.txt"});
    EXPECT_EQ(files.out, "built-over-tls\nhello from " + name + "\n");
    return built.err;
  }

  std::vector<std::string> containers_;
};

TEST_F(EngineTls, VerifiedMutualTlsServesRequestsAndStreams) {
  auto engine_process = start_engine();
  auto engine = std::make_optional(client(*engine_process, good_certs()));
  ASSERT_NE(engine->tls(), nullptr);
  EXPECT_TRUE(engine->tls()->verify);
  EXPECT_EQ(engine->endpoint().url, "tcp://" + engine_process->address());
  auto version = engine->version(deadline_after(10s));
  ASSERT_TRUE(version) << version.error().message();
  EXPECT_EQ(version->os, "linux");
  // A daemon error still reads as the daemon's, naming the endpoint.
  auto missing =
      engine->call("GET", "/images/envd-test/no-such-image:latest/json", "", deadline_after(10s));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found);
  EXPECT_EQ(
      missing.error().message().rfind("the Docker Engine at tcp://" + engine_process->address(), 0),
      0u)
      << missing.error().message();
  // A large streamed body: the base image as a docker-archive.
  std::size_t bytes = 0;
  auto saved = engine->stream(
      "GET", std::string("/images/") + kBase + "/get", "", {}, sdk::StreamMode::chunks,
      [&](std::string_view chunk) {
        bytes += chunk.size();
        return true;
      },
      deadline_after(60s));
  ASSERT_TRUE(saved) << saved.error().message();
  EXPECT_GT(bytes, std::size_t{500} * 1024) << "busybox-static alone is over 500 KiB";
}

// stdin written to the hijacked fd reaches `cat` in a container, and
// shutdown(SHUT_WR) reaches it as end of input, so the exec ends and the fd
// reads EOF: the relay passes half-closes both ways.
TEST_F(EngineTls, AHijackedExecSeesStdinAndItsEnd) {
  auto engine_process = start_engine();
  std::string name = "envd_tls_exec_" + std::to_string(::getpid());
  containers_.push_back(name);
  auto started = run_docker(services_.docker_host, {"run", "-d", "--name", name, "--network",
                                                    "none", kBase, "sleep", "300"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  auto engine = client(*engine_process, good_certs());
  expect_cat_echoes(engine, name, "over TLS");
}

TEST_F(EngineTls, ADaemonSignedByAnotherCaIsRefused) {
  auto engine = start_engine();
  fs::path certs = cert_dir("wrong-ca", pki_->other_ca, pki_->client_cert, pki_->client_key);
  EXPECT_EQ(version_error(*engine, certs),
            "cannot connect to the Docker Engine at tcp://" + engine->address() +
                " over TLS: its certificate is not signed by the CA in '" +
                (certs / "ca.pem").string() + "'");
}

TEST_F(EngineTls, ADaemonCertificateForAnotherNameIsRefused) {
  auto engine = start_engine(true, pki_->misnamed_cert, pki_->misnamed_key);
  EXPECT_EQ(version_error(*engine, good_certs()),
            "cannot connect to the Docker Engine at tcp://" + engine->address() +
                " over TLS: its certificate is not valid for '127.0.0.1'");
}

TEST_F(EngineTls, DockerTlsWithoutVerifyAcceptsAnyDaemonCertificate) {
  auto engine = start_engine(false, pki_->misnamed_cert, pki_->misnamed_key);
  fs::path certs = cert_dir("no-ca", "", "", "");
  EXPECT_EQ(version_error(*engine, certs, false), "");
}

TEST_F(EngineTls, AMissingClientCertificateIsNamed) {
  auto engine = start_engine();
  fs::path certs = cert_dir("ca-only", pki_->ca, "", "");
  std::string error = version_error(*engine, certs);
  EXPECT_EQ(error.rfind("cannot connect to the Docker Engine at tcp://" + engine->address() +
                            " over TLS: it requires a client certificate (",
                        0),
            0u)
      << error;
  EXPECT_TRUE(contains(error, "): put cert.pem and key.pem in the DOCKER_CERT_PATH directory"))
      << error;
}

TEST_F(EngineTls, AClientCertificateOfAnotherCaIsRejected) {
  auto engine = start_engine();
  fs::path certs = cert_dir("stranger", pki_->ca, pki_->stranger_cert, pki_->stranger_key);
  std::string error = version_error(*engine, certs);
  EXPECT_EQ(error.rfind("cannot connect to the Docker Engine at tcp://" + engine->address() +
                            " over TLS: it rejected the client certificate '" +
                            (certs / "cert.pem").string() + "' (",
                        0),
            0u)
      << error;
}

TEST_F(EngineTls, TlsAgainstAPlainTcpEngineSaysSo) {
  ASSERT_EQ(services_.docker_tcp_host.rfind("tcp://127.0.0.1:", 0), 0u)
      << "the env file lacks DOCKER_TCP_HOST: " << services_.docker_tcp_host;
  auto endpoint = sdk::parse_docker_host(services_.docker_tcp_host);
  ASSERT_TRUE(endpoint) << endpoint.error().message();
  sdk::DockerTls tls;
  tls.ca_file = pki_->ca.string();
  auto version = DockerEngine(*endpoint, tls).version(deadline_after(10s));
  ASSERT_FALSE(version);
  EXPECT_EQ(version.error().message(),
            "cannot connect to the Docker Engine at " + services_.docker_tcp_host +
                " over TLS: it does not speak TLS on this port (for a plain-TCP Engine unset "
                "DOCKER_TLS_VERIFY and DOCKER_TLS)");
}

TEST_F(EngineTls, AKeyThatIsNotTheCertificatesIsNamed) {
  auto engine = start_engine();
  fs::path certs = cert_dir("mixed", pki_->ca, pki_->client_cert, pki_->stranger_key);
  EXPECT_EQ(version_error(*engine, certs),
            "the Docker TLS client key '" + (certs / "key.pem").string() +
                "' does not belong to the certificate '" + (certs / "cert.pem").string() + "'");
}

TEST_F(EngineTls, MobyWorkerBuildsThroughATlsEngine) {
  auto engine = start_engine();
  auto env = envd_env(tls_env(*engine, good_certs()));
  envd_ok({"context", "create", "--name", "tls", "--builder", "moby-worker", "--use"}, env);
  auto status = envd({"builder", "status", "--format", "json"}, env);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(contains(status.out, ") at tcp://" + engine->address() + " over TLS")) << status.out;
  // Over TLS the driver's relay carries the connection: it is torn down in
  // order, not left to the process's end (ABI 1.5).
  std::string err = build_to_tar("moby", env);
  EXPECT_FALSE(contains(err, "left to the process's end")) << err;

  // The same context with the wrong CA: one line that says why, exit 1.
  fs::path wrong = cert_dir("wrong-ca", pki_->other_ca, pki_->client_cert, pki_->client_key);
  auto refused = envd({"build", "--network", "none", "--output",
                       "type=tar,dest=" + (home() / "x.tar").string(), project("x").string()},
                      envd_env(tls_env(*engine, wrong)));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "over TLS: its certificate is not signed by the CA in '" +
                                        (wrong / "ca.pem").string() + "'"))
      << refused.err;
  EXPECT_FALSE(fs::exists(home() / "x.tar"));
}

// A context's docker runner address is its Engine instead of DOCKER_HOST,
// with TLS from the same variables whatever DOCKER_HOST is (here the same
// daemon's plain unix socket), as `docker -H` takes them: it once got TLS
// only when DOCKER_HOST was tcp:// too, and spoke plain TCP to a TLS Engine.
TEST_F(EngineTls, ARunnerAddressTakesTlsWhateverDockerHostIs) {
  auto engine = start_engine();
  auto env = envd_env(tls_env(*engine, good_certs()));
  env["DOCKER_HOST"] = services_.docker_host;
  envd_ok({"context", "create", "--name", "tls-runner", "--runner", "docker", "--runner-address",
           "tcp://" + engine->address(), "--use"},
          env);
  const std::string name = "envd-tls-runner-" + std::to_string(::getpid());
  containers_.push_back(name);
  auto ran = envd({"run", "--image", kBase, "--network", "none", "--name", name}, env);
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(ran.out, name + "\n");
  auto listed = envd({"envs", "ls", "--format", "json"}, env);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(contains(listed.out, "\"" + name + "\"")) << listed.out;

  // The certificates are the runner's Engine's: another CA is refused there.
  fs::path wrong = cert_dir("runner-wrong-ca", pki_->other_ca, pki_->client_cert, pki_->client_key);
  auto wrong_env = env;
  wrong_env["DOCKER_CERT_PATH"] = wrong.string();
  auto refused = envd({"envs", "ls"}, wrong_env);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "its certificate is not signed by the CA in '" +
                                        (wrong / "ca.pem").string() + "'"))
      << refused.err;

  auto down = envd({"down", name}, env);
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(down.out, name + "\n");
}

// The whole docker-container path over TLS: bootstrap through the Engine API,
// readiness execs, and the build's `buildctl dial-stdio` exec, hijacked
// through the TLS relay.
TEST_F(EngineTls, DockerContainerBootstrapsAndBuildsThroughATlsEngine) {
  sdk::ProcessOptions image;
  image.argv = {"bash", ENVD_STANDIN_SCRIPT, services_.env_file, ENVD_STANDIN_BINARY, kStandin};
  image.timeout = std::chrono::seconds(120);
  auto made = sdk::run_process(image);
  ASSERT_TRUE(made && made->exit_code == 0) << (made ? made->err : made.error().message());

  auto engine = start_engine();
  auto env = envd_env(tls_env(*engine, good_certs()));
  std::string name = "envd_tls_dc_" + std::to_string(::getpid());
  containers_.push_back(name);
  envd_ok({"context", "create", "--name", "dc", "--builder", "docker-container",
           "--builder-address", name, "--use", "--builder-opt", "network=none", "--builder-opt",
           "privileged=false", "--builder-opt", "gc-keep-storage=1GB", "--builder-opt",
           "mount=" + services_.docker_socket() + ":" + kEngineSocketInContainer},
          env);
  auto boot = envd({"--buildkitd-image", kStandin, "bootstrap", "--format", "json"}, env);
  ASSERT_EQ(boot.exit_code, 0) << boot.err;
  EXPECT_EQ(json::parse(boot.out).at("action"), "created") << boot.out;
  auto state =
      run_docker(services_.docker_host, {"inspect", "--format", "{{.State.Status}}", name});
  EXPECT_EQ(state.out, "running\n") << state.err;
  auto mounts =
      run_docker(services_.docker_host,
                 {"inspect", "--format", "{{range .Mounts}}{{.Destination}} {{end}}", name});
  EXPECT_FALSE(contains(mounts.out, "/etc/buildkit")) << "no bind mount: " << mounts.out;
  auto copied = run_docker(services_.docker_host,
                           {"exec", name, "ls", "-ln", "/etc/buildkit/buildkitd.toml"});
  EXPECT_EQ(copied.out.rfind("-r--r--r-- ", 0), 0u) << copied.out << copied.err;
  auto log = run_docker(services_.docker_host, {"logs", name});
  EXPECT_TRUE(
      contains(log.out + log.err, "config /etc/buildkit/buildkitd.toml:\n# Written by envd"))
      << "the stand-in buildkitd read the copied config: " << log.out << log.err;
  EXPECT_TRUE(contains(log.out + log.err, "[worker.oci]\n  gckeepstorage = 1000000000"))
      << log.out << log.err;

  fs::path dir = project("dc");
  fs::path tar = home() / "dc.tar";
  auto built = envd({"--buildkitd-image", kStandin, "build", "--network", "none", "--progress",
                     "plain", "--output", "type=tar,dest=" + tar.string(), dir.string()},
                    env);
  ASSERT_EQ(built.exit_code, 0) << built.err;
  auto files = run_ok({"tar", "-xOf", tar.string(), "built.txt", "greeting.txt"});
  EXPECT_EQ(files.out, "built-over-tls\nhello from dc\n");

  auto removed = envd({"builder", "rm"}, env);
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_NE(run_docker(services_.docker_host, {"inspect", name}).exit_code, 0);
}

}  // namespace
}  // namespace envd::test
