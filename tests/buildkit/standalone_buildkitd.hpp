// A buildkitd of a test's own (the real binary of RealBuildkit), for tests
// that need a daemon configured their way (a registry of their own in its
// buildkitd.toml, a fresh cache): on a unix socket under `dir`, stopped and
// its mounts undone when the object goes. Test-only, header-only.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "buildkit/real_buildkit.hpp"
#include "envd/process.hpp"

namespace envd::test {

class StandaloneBuildkitd {
 public:
  // Starts buildkitd with `config` as its buildkitd.toml and `extra_flags`.
  StandaloneBuildkitd(const RealBuildkit& bk, const std::filesystem::path& dir,
                      const std::string& config, const std::vector<std::string>& extra_flags = {})
      : buildctl_(bk.buildctl), dir_(dir) {
    std::filesystem::create_directories(dir / "root");
    std::ofstream(dir / "buildkitd.toml") << config;
    sdk::ProcessOptions options;
    options.argv = {bk.buildkitd,
                    "--root",
                    (dir / "root").string(),
                    "--addr",
                    "unix://" + socket_path(),
                    "--config",
                    (dir / "buildkitd.toml").string(),
                    "--oci-worker=true",
                    "--containerd-worker=false",
                    "--oci-worker-snapshotter=native"};
    options.argv.insert(options.argv.end(), extra_flags.begin(), extra_flags.end());
    int log = ::open((dir / "buildkitd.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    auto pid = sdk::spawn_process(options, -1, log, log);
    ::close(log);
    EXPECT_TRUE(pid) << pid.error().message();
    if (pid) pid_ = *pid;
  }
  StandaloneBuildkitd(const StandaloneBuildkitd&) = delete;
  StandaloneBuildkitd& operator=(const StandaloneBuildkitd&) = delete;
  ~StandaloneBuildkitd() { stop(); }

  std::string socket_path() const { return (dir_ / "buildkitd.sock").string(); }
  std::string socket() const { return "unix://" + socket_path(); }

  // Until `buildctl debug workers` answers (at most 60 s).
  bool wait_until_ready() const {
    for (int i = 0; i < 300 && pid_ > 0; ++i) {
      sdk::ProcessOptions options;
      options.argv = {buildctl_, "--addr", socket(), "debug", "workers"};
      options.timeout = std::chrono::seconds(10);
      auto r = sdk::run_process(options);
      if (r && r->succeeded()) return true;
      if (::kill(pid_, 0) != 0) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  std::string log() const {
    std::ifstream in(dir_ / "buildkitd.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // SIGTERM, then SIGKILL after 20 s; then undoes what the daemon left
  // mounted under its directory.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (::kill(pid_, 0) == 0) {
      ::kill(pid_, SIGKILL);
      (void)sdk::wait_process(pid_);
    }
    pid_ = -1;
    std::vector<std::string> mounts;
    std::ifstream table("/proc/self/mounts");
    for (std::string device, point, rest; table >> device >> point && std::getline(table, rest);) {
      if (point.rfind(dir_.string() + "/", 0) == 0) mounts.push_back(point);
    }
    for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
  }

 private:
  std::string buildctl_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

}  // namespace envd::test
