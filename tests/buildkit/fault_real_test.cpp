// Faults on the wire between envd and the real standalone buildkitd: a
// loopback proxy (fault_proxy.hpp) in front of the fixture's plaintext tcp
// daemon black-holes, delays, resets, truncates or half-closes the
// connection at chosen points of the stream. In every case envd ends within
// its deadline with one line naming the builder, exits non-zero, and a retry
// once the fault is cleared succeeds. The tcp builder starts no child
// process, so none can be left.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "buildkit/fault_proxy.hpp"
#include "buildkit/real_buildkit.hpp"
#include "cli_harness.hpp"
#include "services/test_services.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Fault = FaultProxy::Fault;

class FaultTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    bk_ = RealBuildkit::load();
    if (!bk_.absent.empty()) GTEST_SKIP() << bk_.absent;
    ASSERT_TRUE(bk_.error.empty()) << bk_.error;
    auto colon = bk_.tcp.rfind(':');
    proxy_ = std::make_unique<FaultProxy>(bk_.tcp.substr(0, colon),
                                          std::stoi(bk_.tcp.substr(colon + 1)));
    ASSERT_TRUE(proxy_->ok());
    auto r = envd({"context", "create", "--name", "faulty", "--builder", "tcp", "--builder-address",
                   "tcp://" + proxy_->address(), "--use"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    dir_ = home() / "project";
    write_text(dir_ / "Dockerfile", "FROM " + bk_.base +
                                        "\nCOPY data.bin /data.bin\n"
                                        "RUN echo built > /built.txt\n");
    // Enough to send that a fault can land in the middle of the file sync.
    write_text(dir_ / "data.bin", std::string(512 * 1024, 'x'));
  }

  // envd build to a fresh local directory; the result and how long it took.
  std::pair<sdk::ProcessResult, Clock::duration> build(const std::string& what) {
    auto start = Clock::now();
    auto r = envd({"build", "--connect-timeout", "3s", "--progress", "plain", "--output",
                   "type=local,dest=" + (home() / ("out-" + what)).string(), dir_.string()},
                  {{"DOCKER_HOST", "unix://" + (home() / "no-docker.sock").string()}});
    return {r, Clock::now() - start};
  }

  // The fault `plan` fails the build within `limit`, in one error line that
  // names the builder; cleared, the same build succeeds.
  void expect_fault_then_recovery(FaultProxy::Plan plan, const std::string& what,
                                  std::chrono::seconds limit) {
    proxy_->set(plan);
    auto [failed, took] = build(what);
    EXPECT_LT(took, limit) << what;
    EXPECT_EQ(failed.exit_code, 1) << what << ": " << failed.err;
    auto at = failed.err.rfind("envd: error: ");
    ASSERT_NE(at, std::string::npos) << what << ": " << failed.err;
    std::string line = failed.err.substr(at);
    EXPECT_EQ(line.find('\n'), line.size() - 1) << what << ": one line: " << line;
    EXPECT_NE(line.find(proxy_->address()), std::string::npos)
        << what << ": the builder is named: " << line;
    if (line.find("lost the connection") != std::string::npos) {
      // The phase: the step that ran last, or that none had started.
      bool phase = line.find(" during '") != std::string::npos ||
                   line.find(" before the build's first step") != std::string::npos;
      EXPECT_TRUE(phase) << what << ": the phase is named: " << line;
    }
    std::printf("[ %s ] %s", what.c_str(), line.c_str());

    proxy_->set({});
    auto [ok, took_ok] = build(what + "-retry");
    EXPECT_EQ(ok.exit_code, 0) << what << " retry: " << ok.err;
    EXPECT_EQ(read_text(home() / ("out-" + what + "-retry") / "built.txt"), "built\n");
  }

  RealBuildkit bk_;
  std::unique_ptr<FaultProxy> proxy_;
  fs::path dir_;
};

TEST_F(FaultTest, ABlackHoleAtConnectEndsAtTheConnectDeadline) {
  expect_fault_then_recovery({Fault::blackhole, 0, {}}, "blackhole", std::chrono::seconds(10));
}

TEST_F(FaultTest, AResetEarlyInTheStreamIsOneLine) {
  expect_fault_then_recovery({Fault::reset, 200, {}}, "reset-early", std::chrono::seconds(30));
}

TEST_F(FaultTest, AResetDuringTheBuildIsOneLine) {
  expect_fault_then_recovery({Fault::reset, 6000, {}}, "reset-mid", std::chrono::seconds(60));
}

TEST_F(FaultTest, ATruncatedStreamIsOneLine) {
  expect_fault_then_recovery({Fault::truncate, 6000, {}}, "truncate", std::chrono::seconds(60));
}

TEST_F(FaultTest, AHalfClosedStreamIsOneLine) {
  expect_fault_then_recovery({Fault::half_close, 6000, {}}, "half-close", std::chrono::seconds(60));
}

// Half a megabyte comes back from the daemon only in the local export: the
// fault lands there.
TEST_F(FaultTest, AResetDuringTheExportIsOneLine) {
  expect_fault_then_recovery({Fault::reset, 200000, {}}, "reset-export", std::chrono::seconds(60));
}

// A slow link is not a fault: every piece held 20 ms both ways, the build
// still succeeds.
TEST_F(FaultTest, ASlowLinkStillBuilds) {
  proxy_->set({Fault::delay, 0, std::chrono::milliseconds(20)});
  auto [r, took] = build("slow");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(home() / "out-slow" / "built.txt"), "built\n");
}

}  // namespace
}  // namespace envd::test
