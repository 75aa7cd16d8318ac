// The fixture of the CLI tests against the real standalone BuildKit and the
// real Engine and registry (envd_add_buildkit_test() runs them with both
// fixtures): a private home (CliTest), RealBuildkit and TestServices loaded.
// Where the BuildKit binaries are absent the test is skipped with the reason;
// a fixture that failed is a failure. A subclass's SetUp() calls this one
// first and returns when it skipped or failed:
//
//   void SetUp() override {
//     RealBuildkitTestBase::SetUp();
//     if (IsSkipped() || HasFatalFailure()) return;
//     ...
//   }
//
// Test-only, header-only, never installed.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "buildkit/real_buildkit.hpp"
#include "cli_harness.hpp"
#include "services/test_services.hpp"

namespace envd::test {

class RealBuildkitTestBase : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    bk_ = RealBuildkit::load();
    if (!bk_.absent.empty()) GTEST_SKIP() << bk_.absent;
    ASSERT_TRUE(bk_.ok()) << bk_.error;
    services_ = TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
  }

  // The builder options of a docker-container context running bk_.image on
  // these machines (the non-privileged options of the BuildKit README);
  // `config` is its --buildkitd-config, `seccomp` the seccomp= value.
  std::vector<std::string> docker_container_options(
      const std::filesystem::path& config, const std::string& seccomp = "unconfined") const {
    return {"--builder-opt",      "image=" + bk_.image,
            "--builder-opt",      "privileged=false",
            "--builder-opt",      "cap-add=ALL",
            "--builder-opt",      "cap-drop=SYS_RESOURCE",
            "--builder-opt",      "security-opt=seccomp=" + seccomp + ",apparmor=unconfined",
            "--builder-opt",      "security-opt=systempaths=unconfined",
            "--builder-opt",      "mount=/sys/fs/cgroup:/sys/fs/cgroup",
            "--builder-opt",      "network=host",
            "--builder-opt",      "buildkitd-flags=--oci-worker-snapshotter=native",
            "--buildkitd-config", config.string()};
  }

  RealBuildkit bk_;
  TestServices services_;
};

}  // namespace envd::test
