// The store under concurrent writers and under writers killed at random
// moments: no update is ever lost, and the file always parses.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "cli_harness.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

using StoreStress = CliTest;

std::set<std::string> names_in(const json::object& store) {
  std::set<std::string> names;
  for (const auto& ctx : store.at("contexts").as_array()) {
    names.insert(std::string(ctx.at("name").as_string()));
  }
  return names;
}

// 8 processes, each creating 50 distinct contexts and removing every other one.
TEST_F(StoreStress, ConcurrentWritersNeverLoseAnUpdate) {
  envd_ok({"context", "ls"});
  constexpr int kWorkers = 8;
  constexpr int kPerWorker = 50;
  std::string script =
      "set -e\n"
      "for i in $(seq 1 " +
      std::to_string(kPerWorker) +
      "); do\n"
      "  \"$ENVD\" context create --name \"w$W-$i\" 2>/dev/null\n"
      "  if [ $((i % 2)) -eq 0 ]; then \"$ENVD\" context rm \"w$W-$i\" 2>/dev/null; fi\n"
      "done\n";
  std::vector<pid_t> pids;
  for (int w = 0; w < kWorkers; ++w) {
    sdk::ProcessOptions options;
    options.argv = {"sh", "-c", script};
    options.env = base_env();
    options.env["ENVD"] = envd_binary();
    options.env["W"] = std::to_string(w);
    auto pid = sdk::spawn_process(options, -1, -1, -1);
    ASSERT_TRUE(pid) << pid.error().message();
    pids.push_back(*pid);
  }
  for (pid_t pid : pids) {
    auto code = sdk::wait_process(pid);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0) << "a worker failed";
  }
  std::set<std::string> expected{"default"};
  for (int w = 0; w < kWorkers; ++w) {
    for (int i = 1; i <= kPerWorker; i += 2)
      expected.insert("w" + std::to_string(w) + "-" + std::to_string(i));
  }
  EXPECT_EQ(names_in(read_store()), expected);
  EXPECT_EQ(ls_json().size(), expected.size());
}

// Writers killed with SIGKILL at random instants: the file always parses, and
// holds either the state before or after each killed write.
TEST_F(StoreStress, KilledWritersLeaveAParsableStore) {
  envd_ok({"context", "ls"});
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_us(0, 6000);
  std::set<std::string> confirmed{"default"};
  for (int round = 0; round < 120; ++round) {
    std::string name = "k" + std::to_string(round);
    sdk::ProcessOptions options;
    options.argv = {envd_binary(), "context", "create", "--name", name};
    options.env = base_env();
    auto pid = sdk::spawn_process(options, -1, -1, -1);
    ASSERT_TRUE(pid);
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(*pid, SIGKILL);
    auto code = sdk::wait_process(*pid);
    ASSERT_TRUE(code);
    auto names = names_in(read_store());
    // Nothing confirmed earlier is ever lost.
    for (const auto& n : confirmed)
      EXPECT_TRUE(names.count(n)) << "lost " << n << " in round " << round;
    if (names.count(name)) confirmed.insert(name);
    EXPECT_EQ(names.size(), confirmed.size());
  }
  // The store still works for ordinary commands afterwards.
  envd_ok({"context", "create", "after-the-storm"});
  EXPECT_EQ(ls_json().size(), confirmed.size() + 1);
}

}  // namespace
}  // namespace envd::test
