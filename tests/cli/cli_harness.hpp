// Runs the built envd binary in a private temporary home, so CLI tests see a
// fresh machine: no config, no cache, no plugin path but the build tree's.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "envd/process.hpp"

namespace envd::test {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Runs `envd <args>`; `env` adds to (value) or removes from (nullopt) the
  // clean test environment.
  sdk::ProcessResult envd(const std::vector<std::string>& args,
                          const std::map<std::string, std::optional<std::string>>& env = {},
                          const std::string& stdin_data = "");

  // Like envd() but fails the test unless the command exits 0.
  sdk::ProcessResult envd_ok(const std::vector<std::string>& args,
                             const std::map<std::string, std::optional<std::string>>& env = {});

  // The environment every run starts from.
  std::map<std::string, std::optional<std::string>> base_env() const;

  std::filesystem::path home() const { return home_; }
  std::filesystem::path config_dir() const { return home_ / ".config" / "envd"; }
  std::filesystem::path store_file() const { return config_dir() / "contexts.json"; }

  // The store file parsed; fails the test if it does not parse.
  boost::json::object read_store() const;

  // `envd context ls --format json` parsed.
  boost::json::array ls_json();

 private:
  std::filesystem::path home_;
};

std::string read_text(const std::filesystem::path& path);
void write_text(const std::filesystem::path& path, const std::string& text);
std::string golden(const std::string& name);

// The envd binary under test.
const char* envd_binary();

// The permission bits of a file.
unsigned mode_of(const std::filesystem::path& path);

}  // namespace envd::test
