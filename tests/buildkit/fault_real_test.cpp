// Faults on the wire between envd and the real daemons: a loopback proxy
// (fault_proxy.hpp) black-holes, delays, resets, truncates or half-closes
// the connection at chosen points of the stream, counting the daemon's bytes
// or envd's. It stands in front of the standalone buildkitd's TCP port (the
// tcp builder, in plaintext and with mutual TLS) and its unix socket (the
// unix builder), and in front of the test Docker Engine's socket
// (DOCKER_HOST): the moby-worker builder's /grpc link, the load of a built
// image into the Engine, the push through it, and the docker-container
// builder's bootstrap.
//
// In every case envd ends within its deadline, exits 1 with one error line
// naming the builder (or the Engine) and the phase, leaves no child process
// (the test is their subreaper) and no temporary file, does not touch the
// context store, and the same command succeeds once the fault is cleared.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "buildkit/fault_proxy.hpp"
#include "buildkit/real_buildkit_test.hpp"
#include "cli_harness.hpp"
#include "envd/process.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Fault = FaultProxy::Fault;
using Direction = FaultProxy::Direction;
using Env = std::map<std::string, std::optional<std::string>>;

// The base image as the test Engine has it (tests/services/start.sh).
constexpr const char* kEngineBase = "envd-test/busybox:latest";

FaultProxy::Plan fault_plan(Fault fault, std::size_t after_bytes = 0,
                            Direction counted = Direction::from_daemon) {
  FaultProxy::Plan plan;
  plan.fault = fault;
  plan.after_bytes = after_bytes;
  plan.counted = counted;
  return plan;
}

// What a failed command must say: its error line contains every one of
// `names` (the builder, the Engine) and one of `phases`.
struct Expected {
  std::vector<std::string> names;
  std::vector<std::string> phases;
  std::chrono::seconds limit;
};

// The phases of a build as the core names them when the link drops.
const std::vector<std::string> kBuildPhases = {"cannot connect to buildkitd at ", " during '",
                                               " before the build's first step"};

// Every process whose parent is this one.
std::vector<std::string> children_of_this_process() {
  std::vector<std::string> found;
  std::string self = std::to_string(::getpid());
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::string state;
    std::string ppid;
    std::istringstream rest(stat.substr(close + 1));
    rest >> state >> ppid;
    if (ppid == self) found.push_back(pid + " " + stat.substr(0, close + 1));
  }
  return found;
}

// Every file under `dir`, with its content.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file())
      files[fs::relative(it->path(), dir).string()] = read_text(it->path());
  }
  return files;
}

class FaultTest : public RealBuildkitTestBase {
 protected:
  void SetUp() override {
    RealBuildkitTestBase::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // A process envd leaves behind is re-parented to this test, which then sees it.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    fs::create_directories(home() / "tmp");
    dir_ = home() / "project";
    project(bk_.base);
  }

  // The project: a COPY of enough data that a fault can land in the middle of
  // the file sync, and a RUN step.
  void project(const std::string& base) {
    write_text(dir_ / "Dockerfile", "FROM " + base +
                                        "\nCOPY data.bin /data.bin\n"
                                        "RUN echo built > /built.txt\n");
    write_text(dir_ / "data.bin", std::string(512 * 1024, 'x'));
  }

  // The environment of every run: DOCKER_HOST (a socket nobody listens on
  // unless the case needs the Engine) and a private TMPDIR.
  Env env(const std::string& docker_host = {}) const {
    return {{"DOCKER_HOST",
             docker_host.empty() ? "unix://" + (home() / "no-docker.sock").string() : docker_host},
            {"DOCKER_CONFIG", (home() / ".docker").string()},
            {"TMPDIR", (home() / "tmp").string()}};
  }

  void use_context(const std::string& name, const std::vector<std::string>& args,
                   const Env& with = {}) {
    std::vector<std::string> argv = {"context", "create", "--name", name};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.emplace_back("--use");
    auto r = envd(argv, with.empty() ? env() : with);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // envd build of the project to the directory out-<what>, with `extra` flags.
  sdk::ProcessResult build_local(const std::string& what, const Env& with,
                                 const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"build",
                                     "--connect-timeout",
                                     "3s",
                                     "--progress",
                                     "plain",
                                     "--output",
                                     "type=local,dest=" + (home() / ("out-" + what)).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(dir_.string());
    return envd(args, with);
  }

  // Runs `command` with the fault `plan` and checks the failure (see the top
  // of the file), and with `after_failure` what else it must have left as it
  // was; then clears the fault and returns the same command's result, which
  // must succeed.
  sdk::ProcessResult fault_then_recovery(
      FaultProxy& proxy, const FaultProxy::Plan& plan, const std::string& what,
      const Expected& expected,
      const std::function<sdk::ProcessResult(const std::string& what)>& command,
      const std::function<void()>& after_failure = {}) {
    auto store_before = snapshot(config_dir());
    proxy.set(plan);
    auto start = Clock::now();
    auto failed = command(what);
    auto took = Clock::now() - start;
    EXPECT_LT(took, expected.limit) << what;
    EXPECT_EQ(failed.exit_code, 1) << what << ": " << failed.err;

    auto at = failed.err.rfind("envd: error: ");
    EXPECT_NE(at, std::string::npos) << what << ": " << failed.err;
    if (at != std::string::npos) {
      EXPECT_EQ(failed.err.find("envd: error: "), at) << what << ": one error: " << failed.err;
      std::string line = failed.err.substr(at);
      EXPECT_EQ(line.find('\n'), line.size() - 1) << what << ": one line: " << line;
      for (const auto& name : expected.names) {
        EXPECT_NE(line.find(name), std::string::npos)
            << what << ": '" << name << "' is named: " << line;
      }
      bool phase = false;
      for (const auto& p : expected.phases) phase = phase || line.find(p) != std::string::npos;
      EXPECT_TRUE(phase) << what << ": the phase is named: " << line;
      std::printf("[ %s ] %s", what.c_str(), line.c_str());
    }
    EXPECT_EQ(children_of_this_process(), std::vector<std::string>{})
        << what << ": envd left a process";
    EXPECT_EQ(snapshot(home() / "tmp"), (std::map<std::string, std::string>{}))
        << what << ": envd left a file in TMPDIR";
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(home(), ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      EXPECT_NE(it->path().extension(), ".tmp") << what << ": a temporary file: " << it->path();
    }
    EXPECT_EQ(snapshot(config_dir()), store_before) << what << ": the context store changed";
    if (after_failure) after_failure();

    proxy.set({});
    auto ok = command(what + "-retry");
    EXPECT_EQ(ok.exit_code, 0) << what << " retry: " << ok.err;
    return ok;
  }

  // A build of the project through the builder of the context in use fails
  // with `plan` within `limit`, naming builder_; cleared, it builds.
  void expect_fault_then_recovery(const FaultProxy::Plan& plan, const std::string& what,
                                  std::chrono::seconds limit) {
    fault_then_recovery(
        *proxy_, plan, what, {{builder_}, kBuildPhases, limit},
        [this](const std::string& w) { return build_local(w, build_env_, build_extra_); });
    EXPECT_EQ(read_text(home() / ("out-" + what + "-retry") / "built.txt"), "built\n");
  }

  fs::path dir_;
  std::unique_ptr<FaultProxy> proxy_;
  // For expect_fault_then_recovery(): how the error names the builder, and
  // the environment and extra flags of its builds.
  std::string builder_;
  Env build_env_;
  std::vector<std::string> build_extra_;
};

// ---- the tcp builder ------------------------------------------------------

class TcpFaultTest : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto colon = bk_.tcp.rfind(':');
    proxy_ = std::make_unique<FaultProxy>(bk_.tcp.substr(0, colon),
                                          std::stoi(bk_.tcp.substr(colon + 1)));
    ASSERT_TRUE(proxy_->ok());
    use_context("faulty", {"--builder", "tcp", "--builder-address", "tcp://" + proxy_->address()});
    builder_ = "tcp://" + proxy_->address();
    build_env_ = env();
  }

  // The build fails with `plan` within `limit`; cleared, it builds.
};

TEST_F(TcpFaultTest, ABlackHoleAtConnectEndsAtTheConnectDeadline) {
  expect_fault_then_recovery(fault_plan(Fault::blackhole), "blackhole", std::chrono::seconds(10));
}

TEST_F(TcpFaultTest, AResetEarlyInTheStreamIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 200), "reset-early",
                             std::chrono::seconds(30));
}

TEST_F(TcpFaultTest, AResetDuringTheBuildIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 6000), "reset-mid", std::chrono::seconds(60));
}

TEST_F(TcpFaultTest, ATruncatedStreamIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::truncate, 6000), "truncate",
                             std::chrono::seconds(60));
}

TEST_F(TcpFaultTest, AHalfClosedStreamIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::half_close, 6000), "half-close",
                             std::chrono::seconds(60));
}

// Half a megabyte comes back from the daemon only in the local export: the
// fault lands there.
TEST_F(TcpFaultTest, AResetDuringTheExportIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 200000), "reset-export",
                             std::chrono::seconds(60));
}

// The same fault in a tarball's export, over an earlier tarball at the
// destination: the export is written beside it and renamed over it only
// when whole, so the earlier file is left as it was (it was once truncated
// and left half written), and no temporary remains.
TEST_F(TcpFaultTest, AResetDuringATarExportKeepsTheEarlierFile) {
  const fs::path tar = home() / "image.tar";
  write_text(tar, "an earlier build");
  fs::permissions(tar, fs::perms(0640));
  auto ok = fault_then_recovery(
      *proxy_, fault_plan(Fault::reset, 200000), "reset-tar-export",
      {{builder_}, kBuildPhases, std::chrono::seconds(60)},
      [&](const std::string&) {
        return envd({"build", "--connect-timeout", "3s", "--progress", "plain", "--output",
                     "type=tar,dest=" + tar.string(), dir_.string()},
                    env());
      },
      [&] { EXPECT_EQ(read_text(tar), "an earlier build"); });
  EXPECT_GT(fs::file_size(tar), 512u * 1024) << ok.err;
  // The new file keeps the earlier one's mode.
  EXPECT_EQ(fs::status(tar).permissions(), fs::perms(0640));
}

// The export fails on this end (here a file-size limit, as a full disk
// would): that is the error, not what the daemon made of the stream it
// cut (3 runs in 6 said only "EOF" on a full disk).
TEST_F(TcpFaultTest, AnExportThisEndCannotWriteSaysWhy) {
  const fs::path out = home() / "out-limited";
  const fs::path tar = home() / "limited.tar";
  // The first file over the limit (of the base image, or the project's).
  for (const auto& [output, says] :
       {std::pair{"type=local,dest=" + out.string(), "envd: error: the export to directory " +
                                                         out.string() + " failed: cannot write '"},
        std::pair{"type=tar,dest=" + tar.string(),
                  "envd: error: the export to file " + tar.string() +
                      " failed: cannot write file " + tar.string()}}) {
    sdk::ProcessOptions limited;
    // 256 blocks of 512 bytes (dash): the project's 512 KiB file does not fit.
    limited.argv = {"/bin/sh",
                    "-c",
                    "ulimit -f 256; exec \"$@\"",
                    "sh",
                    envd_binary(),
                    "build",
                    "--connect-timeout",
                    "3s",
                    "--progress",
                    "quiet",
                    "--output",
                    output,
                    dir_.string()};
    limited.env = base_env();
    for (const auto& [key, value] : env()) limited.env[key] = *value;
    limited.timeout = std::chrono::seconds(120);
    auto r = sdk::run_process(limited);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->exit_code, 1) << r->err;
    // After the failed step's report, one line.
    const std::string line = r->err.substr(std::min(r->err.find("envd: error: "), r->err.size()));
    EXPECT_EQ(line.rfind(says, 0), 0u) << r->err;
    const std::string end = ": File too large\n";
    EXPECT_TRUE(line.size() > end.size() && line.ends_with(end)) << r->err;
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << r->err;
  }
  EXPECT_FALSE(fs::exists(tar)) << "no half-written tarball";
}

// Half a megabyte goes to the daemon only in the file sync of the context:
// counting envd's bytes, the fault lands in the upload.
TEST_F(TcpFaultTest, AResetDuringTheContextUploadIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 250000, Direction::from_client),
                             "reset-upload", std::chrono::seconds(60));
}

// The daemon reads end-of-stream in the middle of the upload while envd
// still reads the daemon's answers.
TEST_F(TcpFaultTest, AHalfCloseDuringTheContextUploadIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::half_close, 250000, Direction::from_client),
                             "half-close-upload", std::chrono::seconds(60));
}

// A slow link is not a fault: every piece held 20 ms both ways, the build
// still succeeds.
TEST_F(TcpFaultTest, ASlowLinkStillBuilds) {
  FaultProxy::Plan slow;
  slow.fault = Fault::delay;
  slow.delay = std::chrono::milliseconds(20);
  proxy_->set(slow);
  auto r = build_local("slow", env());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(home() / "out-slow" / "built.txt"), "built\n");
}

// ---- the tcp builder with mutual TLS ---------------------------------------

// envd does TLS itself (core/buildkit/tls_tunnel.cpp) and relays plaintext
// HTTP/2 to gRPC: faults in the handshake and inside the encrypted stream
// must end the same way as on a plaintext link. The proxy forwards bytes, so
// the daemon's certificate (valid for 127.0.0.1) still verifies through it.
class MtlsFaultTest : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto colon = bk_.mtls.rfind(':');
    proxy_ = std::make_unique<FaultProxy>(bk_.mtls.substr(0, colon),
                                          std::stoi(bk_.mtls.substr(colon + 1)));
    ASSERT_TRUE(proxy_->ok());
    use_context("faulty", {"--builder", "tcp", "--builder-address", "tcp://" + proxy_->address(),
                           "--builder-tls-ca", bk_.ca(), "--builder-tls-cert", bk_.client_cert(),
                           "--builder-tls-key", bk_.client_key()});
    builder_ = "tcp://" + proxy_->address();
    build_env_ = env();
  }
};

// Accepted and never answered: the ClientHello gets no ServerHello.
TEST_F(MtlsFaultTest, ABlackHoleInTheHandshakeEndsAtTheConnectDeadline) {
  expect_fault_then_recovery(fault_plan(Fault::blackhole), "blackhole", std::chrono::seconds(10));
}

// Cut inside the daemon's first flight (ServerHello, certificate, request
// for envd's certificate), a few hundred bytes in.
TEST_F(MtlsFaultTest, AResetInTheHandshakeIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 300), "reset-handshake",
                             std::chrono::seconds(30));
}

TEST_F(MtlsFaultTest, ATruncatedHandshakeIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::truncate, 300), "truncate-handshake",
                             std::chrono::seconds(30));
}

TEST_F(MtlsFaultTest, AResetDuringTheBuildIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 9000), "reset-mid", std::chrono::seconds(60));
}

TEST_F(MtlsFaultTest, AResetDuringTheContextUploadIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 250000, Direction::from_client),
                             "reset-upload", std::chrono::seconds(60));
}

TEST_F(MtlsFaultTest, AHalfCloseDuringTheExportIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::half_close, 200000), "half-close-export",
                             std::chrono::seconds(60));
}

// ---- the unix builder -----------------------------------------------------

class UnixFaultTest : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    proxy_ = std::make_unique<FaultProxy>(home() / "buildkitd.sock", bk_.unix_socket);
    ASSERT_TRUE(proxy_->ok());
    use_context("faulty",
                {"--builder", "unix", "--builder-address", "unix://" + proxy_->address()});
    builder_ = "unix://" + proxy_->address();
    build_env_ = env();
  }
};

// A unix socket has no RST: the proxy's reset reaches envd as a close.
TEST_F(UnixFaultTest, ABlackHoleAtConnectEndsAtTheConnectDeadline) {
  expect_fault_then_recovery(fault_plan(Fault::blackhole), "blackhole", std::chrono::seconds(10));
}

TEST_F(UnixFaultTest, AResetDuringTheBuildIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 6000), "reset-mid", std::chrono::seconds(60));
}

TEST_F(UnixFaultTest, AHalfClosedStreamIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::half_close, 6000), "half-close",
                             std::chrono::seconds(60));
}

TEST_F(UnixFaultTest, AResetDuringTheContextUploadIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 250000, Direction::from_client),
                             "reset-upload", std::chrono::seconds(60));
}

// An upload big enough to fill the session's tunnel both ways when the
// connection goes: the session's server waited on a write that could never
// leave, and envd with it, until gRPC's own poller gave up 10 s later (or
// for good). It ends within seconds, as every other connection loss does.
TEST_F(UnixFaultTest, AConnectionLostDuringABigUploadEndsWithinSeconds) {
  write_text(dir_ / "data.bin", std::string(64 << 20, 'x'));
  expect_fault_then_recovery(fault_plan(Fault::reset, 8 << 20, Direction::from_client),
                             "reset-big-upload", std::chrono::seconds(8));
}

// ---- the Docker Engine at DOCKER_HOST --------------------------------------

class EngineFaultTest : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    proxy_ = std::make_unique<FaultProxy>(home() / "docker.sock", services_.docker_socket());
    ASSERT_TRUE(proxy_->ok());
  }

  // The environment with DOCKER_HOST at the proxy.
  Env engine_env() const { return env("unix://" + proxy_->address()); }
};

class MobyWorkerFaultTest : public EngineFaultTest {
 protected:
  void SetUp() override {
    EngineFaultTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    project(kEngineBase);
    use_context("faulty", {"--builder", "moby-worker"}, engine_env());
    builder_ = "moby-worker://";
    build_env_ = engine_env();
    build_extra_ = {"--network", "none"};
  }
};

TEST_F(MobyWorkerFaultTest, ABlackHoleAtConnectEndsAtTheConnectDeadline) {
  expect_fault_then_recovery(fault_plan(Fault::blackhole), "blackhole", std::chrono::seconds(10));
}

TEST_F(MobyWorkerFaultTest, AResetDuringTheBuildIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 6000), "reset-mid", std::chrono::seconds(60));
}

TEST_F(MobyWorkerFaultTest, ATruncatedStreamIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::truncate, 6000), "truncate",
                             std::chrono::seconds(60));
}

TEST_F(MobyWorkerFaultTest, AResetDuringTheContextUploadIsOneLine) {
  expect_fault_then_recovery(fault_plan(Fault::reset, 250000, Direction::from_client),
                             "reset-upload", std::chrono::seconds(60));
}

// The build's session has a connection of its own on the Engine (POST
// /session): a fault on it alone, in the middle of the context's upload,
// names the session's connection and the phase; a fault on the /grpc
// connection alone is named as before.
FaultProxy::Plan on_requests_containing(FaultProxy::Plan plan, std::string text) {
  plan.request_contains = std::move(text);
  return plan;
}

TEST_F(MobyWorkerFaultTest, AResetOfTheSessionConnectionAloneIsOneLine) {
  expect_fault_then_recovery(
      on_requests_containing(fault_plan(Fault::reset, 250000, Direction::from_client),
                             "POST /session "),
      "reset-session", std::chrono::seconds(60));
}

TEST_F(MobyWorkerFaultTest, AResetOfTheGrpcConnectionAloneIsOneLine) {
  // Counted on envd's side, since a cached build's /grpc may carry fewer of
  // the daemon's bytes than any fixed count: after 600 of envd's bytes the
  // fault lands in the connect probe or the Solve, and envd names either.
  expect_fault_then_recovery(
      on_requests_containing(fault_plan(Fault::reset, 600, Direction::from_client), "POST /grpc "),
      "reset-grpc", std::chrono::seconds(60));
}

// The image goes to the Engine through the proxy (`envd build` without
// --output on the tcp builder: the `docker` exporter's tarball streamed into
// POST /images/load); the fault cuts that upload.
TEST_F(EngineFaultTest, AResetWhileTheImageLoadsIsOneLine) {
  use_context("direct", {"--builder", "tcp", "--builder-address", "tcp://" + bk_.tcp});
  std::string tag = "envd-fault-load:" + std::to_string(::getpid());
  auto plan = fault_plan(Fault::reset, 100000, Direction::from_client);
  plan.request_contains = "/images/load";
  // The reset stops the export ("cannot load <tag> from <builder> into the
  // Docker Engine"), unless the daemon had already handed over the whole
  // tarball when envd saw it: the build is then over and only the load
  // failed ("built <tag> but cannot load it into the Docker Engine at ...").
  // Which one comes first is the kernel's timing; both name the Engine.
  fault_then_recovery(*proxy_, plan, "load",
                      {{"the Docker Engine at unix://" + proxy_->address()},
                       {"cannot load " + tag + " from tcp://" + bk_.tcp + " into the Docker Engine",
                        "built " + tag + " but cannot load it into the Docker Engine at unix://" +
                            proxy_->address()},
                       std::chrono::seconds(60)},
                      [&](const std::string&) {
                        return envd({"build", "--connect-timeout", "3s", "--progress", "plain",
                                     "-t", tag, dir_.string()},
                                    engine_env());
                      });
  auto inspect = run_docker(services_.docker_host, {"image", "inspect", tag});
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  run_docker(services_.docker_host, {"rmi", "-f", tag});
}

// A black hole that swallows the whole tarball leaves envd waiting for the
// Engine's answer (the load's deadline is long: the Engine answers a large
// image only once it has loaded it); Ctrl-C ends the wait at once, in one
// line, leaving nothing behind.
TEST_F(EngineFaultTest, ABlackHoledLoadEndsAtCtrlC) {
  use_context("direct", {"--builder", "tcp", "--builder-address", "tcp://" + bk_.tcp});
  std::string tag = "envd-fault-load:" + std::to_string(::getpid());
  auto store_before = snapshot(config_dir());
  auto plan = fault_plan(Fault::blackhole);
  plan.request_contains = "/images/load";
  proxy_->set(plan);
  auto started = proxy_->faulted();
  auto bg = envd_background(
      {"build", "--connect-timeout", "3s", "--progress", "plain", "-t", tag, dir_.string()},
      engine_env());
  ASSERT_TRUE(bg->start_error().empty()) << bg->start_error();
  ASSERT_TRUE(bg->wait_for("exporting", std::chrono::seconds(60))) << bg->err();
  // Ctrl-C once the load is in the black hole, however long the export took.
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  while (proxy_->faulted() == started && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(proxy_->faulted(), started) << "the load never reached the proxy: " << bg->err();
  ASSERT_EQ(::kill(bg->pid(), SIGINT), 0);
  auto start = Clock::now();
  auto status = bg->wait_exit(std::chrono::seconds(10));
  ASSERT_TRUE(status) << "envd did not end at Ctrl-C: " << bg->err();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << *status;
  std::string line = bg->err().substr(bg->err().rfind("envd: error: "));
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  std::printf("[ load-blackhole ] %s", line.c_str());
  EXPECT_EQ(children_of_this_process(), std::vector<std::string>{});
  EXPECT_EQ(snapshot(home() / "tmp"), (std::map<std::string, std::string>{}));
  EXPECT_EQ(snapshot(config_dir()), store_before);

  proxy_->set({});
  auto ok =
      envd({"build", "--connect-timeout", "3s", "--progress", "plain", "-t", tag, dir_.string()},
           engine_env());
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  run_docker(services_.docker_host, {"rmi", "-f", tag});
}

// Ctrl-C while `envd run` waits for the new environment to run removes the
// container it made, whichever call it lands in: one landing in an Engine
// call (here slowed by the proxy, as a remote Engine is) used to return at
// once and leave the container running.
TEST_F(EngineFaultTest, CtrlCWhileRunWaitsRemovesTheContainerItMade) {
  use_context("runs", {"--builder", "tcp", "--builder-address", "tcp://" + bk_.tcp}, engine_env());
  const std::string name = "envd-fault-run-" + std::to_string(::getpid());
  auto plan = fault_plan(Fault::delay);
  plan.delay = std::chrono::milliseconds(400);
  plan.request_contains = "/json";  // the inspects; create and start pass as they come
  proxy_->set(plan);
  auto bg = envd_background(
      {"run", "--image", kEngineBase, "--name", name, "--network", "none", "--", "sleep", "1000"},
      engine_env());
  ASSERT_TRUE(bg->start_error().empty()) << bg->start_error();
  ASSERT_TRUE(bg->wait_for("waiting for environment", std::chrono::seconds(60))) << bg->err();
  ASSERT_EQ(::kill(bg->pid(), SIGINT), 0);
  auto status = bg->wait_exit(std::chrono::seconds(20));
  ASSERT_TRUE(status) << "envd did not end at Ctrl-C: " << bg->err();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 130) << *status << bg->err();
  EXPECT_NE(bg->err().find("starting environment '" + name + "' cancelled"), std::string::npos)
      << bg->err();
  proxy_->set({});
  auto left =
      run_docker(services_.docker_host, {"ps", "-a", "-q", "--filter", "name=^/" + name + "$"});
  EXPECT_EQ(left.exit_code, 0) << left.err;
  EXPECT_EQ(left.out, "") << "the container was left behind";
  run_docker(services_.docker_host, {"rm", "-f", name});
}

// A moby-worker build with push=true pushes through the Engine (POST
// /images/<name>/push); the fault resets that call.
TEST_F(MobyWorkerFaultTest, AResetDuringThePushIsOneLine) {
  std::string name = services_.registry + "/envd-test/fault-push:" + std::to_string(::getpid());
  auto plan = fault_plan(Fault::reset, 0);
  plan.request_contains = "/push?";
  fault_then_recovery(
      *proxy_, plan, "push",
      {{"the Docker Engine at unix://" + proxy_->address()},
       {"cannot push " + name},
       std::chrono::seconds(60)},
      [&](const std::string&) {
        return envd({"build", "--connect-timeout", "3s", "--progress", "plain", "--network", "none",
                     "--output", "type=image,name=" + name + ",push=true", dir_.string()},
                    engine_env());
      });
  run_docker(services_.docker_host, {"rmi", "-f", name});
}

// The docker-container builder creates its container through the Engine on
// the first build. The answer to POST /containers/create is reset (the
// Engine did create it): the build fails naming the builder and the call,
// removes the container it cannot know it made right, and the next build
// creates it again and builds.
class DockerContainerFaultTest : public EngineFaultTest {
 protected:
  void SetUp() override {
    EngineFaultTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    name_ = "envd_fault_" + std::to_string(::getpid());
    fs::path config = home() / "buildkitd.toml";
    write_text(config,
               "[registry.\"" + services_.registry + "\"]\n  http = true\n  insecure = true\n");
    std::vector<std::string> args = {"--builder", "docker-container", "--builder-address", name_};
    auto opts = docker_container_options(config);
    args.insert(args.end(), opts.begin(), opts.end());
    use_context("faulty", args, engine_env());
  }

  void TearDown() override {
    if (!name_.empty()) {
      run_docker(services_.docker_host, {"rm", "-f", name_});
      run_docker(services_.docker_host, {"volume", "rm", "-f", name_ + "_state"});
    }
    FaultTest::TearDown();
  }

  sdk::ProcessResult build(const std::string& what, const std::string& connect_timeout) {
    return envd({"build", "--connect-timeout", connect_timeout, "--progress", "plain", "--output",
                 "type=local,dest=" + (home() / ("out-" + what)).string(), dir_.string()},
                engine_env());
  }

  std::string name_;
};

TEST_F(DockerContainerFaultTest, AResetDuringTheBootstrapIsOneLine) {
  auto plan = fault_plan(Fault::reset, 0);
  plan.request_contains = "/containers/create?";
  fault_then_recovery(
      *proxy_, plan, "bootstrap",
      {{"docker-container://" + name_, "the Docker Engine at unix://" + proxy_->address()},
       {"cannot create buildkitd container"},
       std::chrono::seconds(60)},
      [&](const std::string& w) { return build(w, "60s"); });
  EXPECT_EQ(read_text(home() / "out-bootstrap-retry" / "built.txt"), "built\n");
}

// The first call of the bootstrap (inspecting the container) is black-holed:
// the build ends at the connect deadline.
TEST_F(DockerContainerFaultTest, ABlackHoleDuringTheBootstrapEndsAtTheConnectDeadline) {
  auto plan = fault_plan(Fault::blackhole);
  plan.request_contains = "/containers/" + name_ + "/json";
  fault_then_recovery(
      *proxy_, plan, "bootstrap-blackhole",
      {{"docker-container://" + name_, "the Docker Engine at unix://" + proxy_->address()},
       {"cannot connect to buildkitd at "},
       std::chrono::seconds(20)},
      [&](const std::string& w) { return build(w, "10s"); });
  EXPECT_EQ(read_text(home() / "out-bootstrap-blackhole-retry" / "built.txt"), "built\n");
}

// The call that creates the container, then the one that starts it, is
// black-holed (the proxy accepts it and never passes it on): creating,
// starting and waiting for buildkitd share the one connect deadline (5 s
// here), so the build ends there, in one line naming the container and the
// call, and no container is left (one that was created is removed again).
// Cleared, the next build (with a deadline that fits a cold start) builds.
TEST_F(DockerContainerFaultTest, ABlackHoledCreateOrStartEndsAtTheConnectDeadline) {
  const std::string engine = "the Docker Engine at unix://" + proxy_->address();
  struct Step {
    std::string what;
    std::string request;
    std::string phase;
  };
  for (const Step& step :
       {Step{"create-blackhole", "/containers/create?", "cannot create buildkitd container '"},
        Step{"start-blackhole", "/containers/" + name_ + "/start",
             "cannot start buildkitd container '"}}) {
    SCOPED_TRACE(step.what);
    auto plan = fault_plan(Fault::blackhole);
    plan.request_contains = step.request;
    fault_then_recovery(
        *proxy_, plan, step.what,
        {{"docker-container://" + name_, engine, " did not answer POST /containers/",
          "(connect timeout: 5000 ms)"},
         {step.phase + name_ + "': " + engine},
         std::chrono::seconds(12)},
        [&](const std::string& w) { return build(w, w.ends_with("-retry") ? "60s" : "5s"); },
        [&] {
          auto inspect = run_docker(services_.docker_host, {"container", "inspect", name_});
          EXPECT_NE(inspect.exit_code, 0) << step.what << ": a container was left: " << inspect.out;
        });
    EXPECT_EQ(read_text(home() / ("out-" + step.what + "-retry") / "built.txt"), "built\n");
    // The next step starts from no container again.
    run_docker(services_.docker_host, {"rm", "-f", name_});
  }
}

// Once the container runs, a build whose driver cannot reach buildkitd's
// socket itself (an Engine elsewhere; here the user's own mount over
// /run/buildkit, which envd leaves alone) links through `buildctl dial-stdio`
// in it, through the Engine's hijacked POST /exec/<id>/start: reset mid-build.
TEST_F(DockerContainerFaultTest, AResetOfTheDialStdioLinkIsOneLine) {
  fs::path own_run = home() / "own-run";
  fs::create_directories(own_run);
  std::vector<std::string> args = {
      "--builder", "docker-container", "--builder-address",
      name_,       "--builder-opt",    "mount=" + own_run.string() + ":/run/buildkit"};
  auto opts = docker_container_options(home() / "buildkitd.toml");
  args.insert(args.end(), opts.begin(), opts.end());
  use_context("faulty-exec", args, engine_env());
  auto warm = build("warm", "60s");
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  auto plan = fault_plan(Fault::reset, 6000);
  plan.request_contains = "/exec/";
  fault_then_recovery(*proxy_, plan, "dial-stdio",
                      {{"docker-container://" + name_}, kBuildPhases, std::chrono::seconds(60)},
                      [&](const std::string& w) { return build(w, "10s"); });
  EXPECT_EQ(read_text(home() / "out-dial-stdio-retry" / "built.txt"), "built\n");
}

}  // namespace
}  // namespace envd::test
