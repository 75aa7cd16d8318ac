// The store under concurrent writers and under writers killed at random
// moments: no update is ever lost, and the file always parses.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

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
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
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

// Holds the store's lock (the flock every writer takes) while a writer
// starts, so the writer's whole start-up is behind it and what follows the
// release is the locked write itself.
class StoreLock {
 public:
  explicit StoreLock(const fs::path& lock_file)
      : fd_(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    EXPECT_GE(fd_, 0) << lock_file;
    EXPECT_EQ(::flock(fd_, LOCK_EX), 0);
  }
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;
  ~StoreLock() { release(); }
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Whether `pid` sleeps in the kernel waiting for a file lock.
bool waits_for_a_lock(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/wchan");
  std::string wchan;
  in >> wchan;
  return wchan.find("lock") != std::string::npos;
}

// Writers killed with SIGKILL at random instants of their locked write: the
// file always parses, nothing confirmed is ever lost, and every create that
// finished is there. Each writer is held at the store's lock until it waits
// there; the kill then comes at a random point of the time a write takes
// from the lock's release (measured first), and the test runs until kills
// demonstrably landed inside the write (the store's temporary file was left
// behind), before it and after it.
TEST_F(StoreStress, KilledWritersLeaveAParsableStore) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "ls"});
  const fs::path temp = store_file().string() + ".tmp";
  const fs::path lock_file = store_file().string() + ".lock";
  std::set<std::string> confirmed{"default"};
  // Starts `envd context create NAME` and returns once it waits for the lock
  // `held` holds (or 5 s passed).
  auto held_create = [&](const std::string& name) {
    sdk::ProcessOptions options;
    options.argv = {envd_binary(), "context", "create", "--name", name};
    options.env = base_env();
    auto pid = sdk::spawn_process(options, -1, -1, -1);
    EXPECT_TRUE(pid) << pid.error().message();
    if (!pid) return pid_t{-1};
    for (int i = 0; i < 5000 && !waits_for_a_lock(*pid); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(waits_for_a_lock(*pid)) << name << " never waited for the store's lock";
    return *pid;
  };

  // How long a write takes from the lock's release to the writer's exit.
  std::vector<long> took_us;
  for (int i = 0; i < 5; ++i) {
    StoreLock held(lock_file);
    pid_t pid = held_create("timed" + std::to_string(i));
    ASSERT_GT(pid, 0);
    auto start = std::chrono::steady_clock::now();
    held.release();
    auto code = sdk::wait_process(pid);
    ASSERT_TRUE(code && *code == 0);
    took_us.push_back(static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::steady_clock::now() - start)
                                            .count()));
    confirmed.insert("timed" + std::to_string(i));
  }
  std::sort(took_us.begin(), took_us.end());
  const long write_us = took_us[took_us.size() / 2];

  std::mt19937 rng(12345);
  std::uniform_int_distribution<long> delay_us(0, write_us + write_us / 2);
  int finished = 0;     // creates that exited 0 before the kill
  int mid_write = 0;    // kills that left the temporary file: inside the locked write
  int interrupted = 0;  // other kills
  int round = 0;
  for (; round < 400 && (mid_write < 3 || finished < 3 || interrupted < 3); ++round) {
    std::string name = "k" + std::to_string(round);
    StoreLock held(lock_file);
    pid_t pid = held_create(name);
    ASSERT_GT(pid, 0);
    const long delay = delay_us(rng);
    held.release();
    if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
    ::kill(pid, SIGKILL);
    auto code = sdk::wait_process(pid);
    ASSERT_TRUE(code);
    const bool left_temp = fs::exists(temp);
    if (*code == 0) {
      ++finished;
    } else if (left_temp) {
      ++mid_write;
    } else {
      ++interrupted;
    }
    fs::remove(temp);  // so the next round's observation is its own
    auto names = names_in(read_store());
    // Nothing confirmed earlier is ever lost; a create that finished is there.
    for (const auto& n : confirmed) {
      EXPECT_TRUE(names.count(n)) << "lost " << n << " in round " << round;
    }
    if (*code == 0) {
      EXPECT_TRUE(names.count(name)) << name << " finished but is missing";
    }
    if (names.count(name)) confirmed.insert(name);
    EXPECT_EQ(names.size(), confirmed.size());
  }
  EXPECT_GE(mid_write, 3) << "too few kills landed inside a write in " << round
                          << " rounds (a write takes " << write_us << " us)";
  EXPECT_GE(finished, 3) << "too few creates finished before their kill";
  EXPECT_GE(interrupted, 3) << "too few kills landed before the write";
  // The store still works for ordinary commands afterwards.
  envd_ok({"context", "create", "after-the-storm"});
  EXPECT_EQ(ls_json().size(), confirmed.size() + 1);
}

}  // namespace
}  // namespace envd::test
