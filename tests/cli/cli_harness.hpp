// Runs the built envd binary in a private temporary home, so CLI tests see a
// fresh machine: no config, no cache, no plugin path but the build tree's.
#pragma once

#include <gtest/gtest.h>

#include <sys/types.h>
#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envd/process.hpp"
#include "plugins/built_modules.hpp"  // ENVD_REQUIRE_MODULES, for every CLI test

namespace envd::test {

// An envd started in the background, whose stderr the test reads as it comes
// (for tests that act while a build runs: Ctrl-C, a daemon going away). The
// destructor kills and reaps a process still running. Its stdin and stdout
// are the given descriptors (a terminal, say), /dev/null for -1.
class BackgroundEnvd {
 public:
  explicit BackgroundEnvd(const sdk::ProcessOptions& options, int stdin_fd = -1,
                          int stdout_fd = -1);
  BackgroundEnvd(const BackgroundEnvd&) = delete;
  BackgroundEnvd& operator=(const BackgroundEnvd&) = delete;
  ~BackgroundEnvd();

  // Empty when the process started; else why not.
  const std::string& start_error() const { return start_error_; }
  pid_t pid() const { return pid_; }

  // Reads stderr until it contains `text`; false if envd closed it first or
  // `limit` passed.
  bool wait_for(const std::string& text,
                std::chrono::milliseconds limit = std::chrono::seconds(120));

  // Waits up to `limit` for envd to exit, collecting the rest of stderr.
  // Returns the wait(2) status, or nullopt if it was still running (it is
  // then killed).
  std::optional<int> wait_exit(std::chrono::milliseconds limit);

  // Everything read from stderr so far.
  const std::string& err() const { return err_; }

 private:
  bool read_some(int timeout_ms);  // false at end of file

  pid_t pid_ = -1;
  int err_fd_ = -1;
  bool exited_ = false;
  std::string err_;
  std::string start_error_;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Runs `envd <args>`; `env` adds to (value) or removes from (nullopt) the
  // clean test environment.
  sdk::ProcessResult envd(const std::vector<std::string>& args,
                          const std::map<std::string, std::optional<std::string>>& env = {},
                          const std::string& stdin_data = "");

  // Starts `envd <args>` in the background with its stderr piped to the test
  // (and its stdout to `stdout_fd` when one is given, which stays the caller's).
  std::unique_ptr<BackgroundEnvd> envd_background(
      const std::vector<std::string>& args,
      const std::map<std::string, std::optional<std::string>>& env = {}, int stdout_fd = -1);

  // Runs envd as envd() does, but bound by file permissions as a user is: as
  // root (CI), without the capabilities that override them
  // (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), dropped from its
  // bounding set with setpriv, so a mode 000 directory is closed to it too.
  // Not root: envd() itself.
  sdk::ProcessResult envd_bound_by_permissions(
      const std::vector<std::string>& args,
      const std::map<std::string, std::optional<std::string>>& env = {});

  // Like envd() but fails the test unless the command exits 0.
  sdk::ProcessResult envd_ok(const std::vector<std::string>& args,
                             const std::map<std::string, std::optional<std::string>>& env = {});

  // The environment every run starts from.
  std::map<std::string, std::optional<std::string>> base_env() const;

  // ASAN_OPTIONS as this process has them, with LeakSanitizer's exit scan off:
  // for an envd that cannot scan (no /proc to stop its threads through) or
  // that the test kills during the scan. Every other envd is scanned.
  static std::string asan_options_without_leak_scan();

  // The whole environment of a run (this process's, with base_env() and then
  // `env` applied) as a PtySession takes it, with TERM=xterm.
  std::map<std::string, std::string> full_env(
      const std::map<std::string, std::optional<std::string>>& env = {}) const;

  std::filesystem::path home() const { return home_; }
  std::filesystem::path config_dir() const { return home_ / ".config" / "envd"; }
  std::filesystem::path store_file() const { return config_dir() / "contexts.json"; }

  // The store file parsed; fails the test if it does not parse.
  boost::json::object read_store() const;

  // The daemon answers builds remembered (<cache dir>/envd/daemons/*.json).
  std::vector<std::filesystem::path> remembered_daemon_answers() const;

  // `envd context ls --format json` parsed.
  boost::json::array ls_json();

 private:
  // `prefix` (a program that runs envd, or none), envd and `args`.
  sdk::ProcessResult run_envd(const std::vector<std::string>& prefix,
                              const std::vector<std::string>& args,
                              const std::map<std::string, std::optional<std::string>>& env,
                              const std::string& stdin_data);

  std::filesystem::path home_;
};

std::string read_text(const std::filesystem::path& path);
void write_text(const std::filesystem::path& path, const std::string& text);
std::string golden(const std::string& name);

// The record of context `name` in a parsed store file; fails the test if
// there is none.
boost::json::object stored_context(const boost::json::object& store, const std::string& name);

// A real self-signed CA certificate (P-256, valid until 2126), for tests that
// store one: context create, update and import read every certificate of a
// CA file with OpenSSL.
inline constexpr const char* kTestCaPem =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhDCCASugAwIBAgIUAqB0Rp5YkHGXd4yXIktgfktR+w8wCgYIKoZIzj0EAwIw\n"
    "FzEVMBMGA1UEAwwMZW52ZC10ZXN0LWNhMCAXDTI2MTIwNzAzMTY1M1oYDzIxMjYx\n"
    "MTEzMDMxNjUzWjAXMRUwEwYDVQQDDAxlbnZkLXRlc3QtY2EwWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAAQK3RlAH2FfwYzQkbDtOaYrvPoVyTEp5DThHDC8XFIU/jJd\n"
    "EcdOoJOWDsL9yUreetQc+H9djfEw0/XaoO5uyXUlo1MwUTAdBgNVHQ4EFgQUmiSk\n"
    "K67HmCwMxPGSPyN4j0+N7hEwHwYDVR0jBBgwFoAUmiSkK67HmCwMxPGSPyN4j0+N\n"
    "7hEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiB9NGHhcPfUD3ww\n"
    "frEIy0zyEn8LDihRxfXVKZD2mXrLRQIgRbKQj2ZIwKNBy/38PtQ26Agz8sgwQCP/\n"
    "Ep2PCsq8GXI=\n"
    "-----END CERTIFICATE-----\n";

// A self-signed certificate and its unencrypted key (P-256), made with the
// openssl CLI: `dir`/`name`.pem and `dir`/`name`.key. Fails the test if
// openssl does.
struct TlsPairFiles {
  std::filesystem::path cert;
  std::filesystem::path key;
};
TlsPairFiles make_tls_pair(const std::filesystem::path& dir, const std::string& name);

// Runs the docker CLI against the engine at `docker_host` (2 min at most).
sdk::ProcessResult run_docker(const std::string& docker_host, const std::vector<std::string>& args);

// The envd binary under test.
const char* envd_binary();

// The permission bits of a file.
unsigned mode_of(const std::filesystem::path& path);

}  // namespace envd::test
