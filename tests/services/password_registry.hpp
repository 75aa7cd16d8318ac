// A registry that wants a password, for tests of registry credentials (push,
// pull): Debian's docker-registry with htpasswd "envd" / "secret" (bcrypt
// cost 4, so that the many checks of one push stay fast) on 127.0.0.1, run by
// the test itself and stopped with it. Test-only, header-only.
//
//   PasswordRegistry registry(home() / "password-registry");
//   ASSERT_TRUE(registry.wait_until_up());
//   // push to registry.address() + "/team/app:1" with auth "envd:secret"
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "envd/process.hpp"
#include "services/loopback.hpp"

namespace envd::test {

class PasswordRegistry {
 public:
  // "Basic" auth of envd:secret, as config.json's auths entries hold it.
  static constexpr const char* kAuth = "ZW52ZDpzZWNyZXQ=";

  explicit PasswordRegistry(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir / "data");
    std::ofstream(dir / "htpasswd")
        << "envd:$2b$04$ZBqnIpE7H.gdUuCCcZQPLuf9iWFzTM1hYH2s7Fd2b4TOvky55/T3C\n";
    port_ = closed_port();
    std::ofstream(dir / "config.yml")
        << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
        << (dir / "data").string()
        << "\nauth:\n  htpasswd:\n    realm: envd-e2e\n    path: " << (dir / "htpasswd").string()
        << "\nhttp:\n  addr: " << address() << "\n";
    sdk::ProcessOptions options;
    options.argv = {"docker-registry", "serve", (dir / "config.yml").string()};
    int log = ::open((dir / "registry.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    auto pid = sdk::spawn_process(options, -1, log, log);
    ::close(log);
    EXPECT_TRUE(pid) << pid.error().message();
    if (pid) pid_ = *pid;
  }
  PasswordRegistry(const PasswordRegistry&) = delete;
  PasswordRegistry& operator=(const PasswordRegistry&) = delete;
  ~PasswordRegistry() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      (void)sdk::wait_process(pid_);
    }
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Up once /v2/ answers 401 (it wants credentials).
  bool wait_until_up() const {
    for (int i = 0; i < 100; ++i) {
      sdk::ProcessOptions options;
      options.argv = {"curl", "-sS",          "--max-time",
                      "5",    "-o",           "/dev/null",
                      "-w",   "%{http_code}", "http://" + address() + "/v2/"};
      options.timeout = std::chrono::seconds(10);
      auto r = sdk::run_process(options);
      if (r && r->out == "401") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace envd::test
