// The store under concurrent writers and under writers killed at random
// moments: no update is ever lost, and the file always parses.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
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

// Waits for every process; each must exit 0.
void expect_all_succeed(const std::vector<pid_t>& pids, const std::string& what) {
  for (pid_t pid : pids) {
    auto code = sdk::wait_process(pid);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0) << what;
  }
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
  expect_all_succeed(pids, "a worker failed");
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

// Watches a directory for a file renamed onto `name` (the store's rename over
// the old store): when() waits for it and says how long after `since` it came.
class RenameWatch {
 public:
  RenameWatch(const fs::path& dir, std::string name)
      : fd_(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK)), name_(std::move(name)) {
    EXPECT_GE(fd_, 0);
    EXPECT_GE(::inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO), 0) << dir;
  }
  RenameWatch(const RenameWatch&) = delete;
  RenameWatch& operator=(const RenameWatch&) = delete;
  ~RenameWatch() { ::close(fd_); }

  // Microseconds from `since` to the rename, or -1 when none came in 10 s.
  long when(std::chrono::steady_clock::time_point since) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    alignas(inotify_event) char buf[4096];
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      ssize_t n = ::read(fd_, buf, sizeof buf);
      auto now = std::chrono::steady_clock::now();
      for (ssize_t at = 0; n > 0 && at < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buf + at);
        if (event->len > 0 && name_ == event->name) {
          return static_cast<long>(
              std::chrono::duration_cast<std::chrono::microseconds>(now - since).count());
        }
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
    return -1;
  }

 private:
  int fd_;
  std::string name_;
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
// there; the kill then comes at a random point after the lock's release, and
// the test runs until kills demonstrably landed inside the write (the
// store's temporary file was left behind), before it and after the writer
// finished. Two times are measured first, from the release: to the rename
// of the new store over the old one (the write itself) and to the writer's
// exit. Every other kill falls within the first (times 1.5), the others
// within the second: how long a writer takes to exit after its write (its
// teardown, much longer under a sanitizer) neither dilutes the kills that
// must land inside the write nor keeps any writer from finishing.
TEST_F(StoreStress, KilledWritersLeaveAParsableStore) {
  ENVD_REQUIRE_MODULES("docker-container builder", "docker runner");
  envd_ok({"context", "ls"});
  // The store's temporaries (contexts.json.XXXXXX.tmp): removed, and
  // counted, after each round.
  auto remove_temporaries = [this] {
    int removed = 0;
    const std::string prefix = store_file().filename().string() + ".";
    for (const auto& entry : fs::directory_iterator(config_dir())) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && entry.path().extension() == ".tmp") {
        fs::remove(entry.path());
        ++removed;
      }
    }
    return removed;
  };
  const fs::path lock_file = store_file().string() + ".lock";
  std::set<std::string> confirmed{"default"};
  // Starts `envd context create NAME` and returns once it waits for the lock
  // `held` holds (or 5 s passed).
  auto held_create = [&](const std::string& name) {
    sdk::ProcessOptions options;
    options.argv = {envd_binary(), "context", "create", "--name", name};
    options.env = base_env();
    // Under AddressSanitizer, a writer killed during LeakSanitizer's scan at
    // exit leaves "Unable to get registers from thread" in the sanitizer
    // report file; the writers killed here do not scan (every other test's
    // envd does, `context create` included).
    options.env["ASAN_OPTIONS"] = asan_options_without_leak_scan();
    auto pid = sdk::spawn_process(options, -1, -1, -1);
    EXPECT_TRUE(pid) << pid.error().message();
    if (!pid) return pid_t{-1};
    for (int i = 0; i < 5000 && !waits_for_a_lock(*pid); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(waits_for_a_lock(*pid)) << name << " never waited for the store's lock";
    return *pid;
  };

  // How long a write takes from the lock's release to its rename, and to the
  // writer's exit.
  std::vector<long> rename_us;
  std::vector<long> exit_us;
  for (int i = 0; i < 5; ++i) {
    StoreLock held(lock_file);
    pid_t pid = held_create("timed" + std::to_string(i));
    ASSERT_GT(pid, 0);
    RenameWatch renamed(store_file().parent_path(), store_file().filename().string());
    auto start = std::chrono::steady_clock::now();
    held.release();
    long rename = renamed.when(start);
    auto code = sdk::wait_process(pid);
    ASSERT_TRUE(code && *code == 0);
    exit_us.push_back(static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::steady_clock::now() - start)
                                            .count()));
    ASSERT_GT(rename, 0) << "the store was not renamed into place";
    rename_us.push_back(rename);
    confirmed.insert("timed" + std::to_string(i));
  }
  std::sort(rename_us.begin(), rename_us.end());
  std::sort(exit_us.begin(), exit_us.end());
  const long write_us = rename_us[rename_us.size() / 2];
  const long whole_us = std::max(exit_us[exit_us.size() / 2], write_us);

  std::mt19937 rng(12345);
  std::uniform_int_distribution<long> in_write_us(0, write_us + write_us / 2);
  std::uniform_int_distribution<long> in_whole_us(0, whole_us + whole_us / 2);
  int finished = 0;     // creates that exited 0 before the kill
  int mid_write = 0;    // kills that left the temporary file: inside the locked write
  int interrupted = 0;  // other kills
  int round = 0;
  for (; round < 400 && (mid_write < 3 || finished < 3 || interrupted < 3); ++round) {
    std::string name = "k" + std::to_string(round);
    StoreLock held(lock_file);
    pid_t pid = held_create(name);
    ASSERT_GT(pid, 0);
    const long delay = round % 2 == 0 ? in_write_us(rng) : in_whole_us(rng);
    held.release();
    if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
    ::kill(pid, SIGKILL);
    auto code = sdk::wait_process(pid);
    ASSERT_TRUE(code);
    // Removed, so the next round's observation is its own.
    const bool left_temp = remove_temporaries() > 0;
    if (*code == 0) {
      ++finished;
    } else if (left_temp) {
      ++mid_write;
    } else {
      ++interrupted;
    }
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
  std::printf(
      "[ kills ] %d rounds: %d inside the write, %d finished, %d other (write %ld us, "
      "writer %ld us)\n",
      round, mid_write, finished, interrupted, write_us, whole_us);
  EXPECT_GE(mid_write, 3) << "too few kills landed inside a write in " << round
                          << " rounds (a write takes " << write_us << " us, a writer " << whole_us
                          << " us)";
  EXPECT_GE(finished, 3) << "too few creates finished before their kill";
  EXPECT_GE(interrupted, 3) << "too few kills landed before the write";
  // The store still works for ordinary commands afterwards.
  envd_ok({"context", "create", "after-the-storm"});
  EXPECT_EQ(ls_json().size(), confirmed.size() + 1);
}

// Runs envd with each argument list at once and waits for all; each must succeed.
void run_at_once(const std::vector<std::vector<std::string>>& runs,
                 const std::map<std::string, std::optional<std::string>>& env) {
  std::vector<pid_t> pids;
  for (const auto& args : runs) {
    sdk::ProcessOptions options;
    options.argv = {envd_binary()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env = env;
    auto pid = sdk::spawn_process(options, -1, -1, -1);
    ASSERT_TRUE(pid) << pid.error().message();
    pids.push_back(*pid);
  }
  expect_all_succeed(pids, "an update failed");
}

// Two updates of one context at once, each changing another field: both
// apply (an update worked out from a record the other made stale is worked
// out again), where one used to write its stale copy over the other's change.
TEST_F(StoreStress, ConcurrentUpdatesOfOneContextBothApply) {
  ENVD_REQUIRE_MODULES("tcp builder", "docker runner");
  envd_ok({"context", "create", "--name", "u", "--builder", "tcp", "--builder-address",
           "127.0.0.1:1000"});
  for (int round = 1; round <= 12; ++round) {
    std::string port = std::to_string(1000 + round);
    std::string socket = "unix:///tmp/envd-runner-" + std::to_string(round) + ".sock";
    run_at_once({{"context", "update", "u", "--builder-address", "127.0.0.1:" + port},
                 {"context", "update", "u", "--runner-address", socket}},
                base_env());
    json::object ctx = stored_context(read_store(), "u");
    ASSERT_EQ(ctx.at("builder_address").as_string(), "127.0.0.1:" + port) << "round " << round;
    ASSERT_EQ(ctx.at("runner_address").as_string(), socket) << "round " << round;
  }
}

// Updates replacing a context's whole TLS set at once leave one set whole,
// never a CA of one with a key of the other, and each says what it did.
TEST_F(StoreStress, ConcurrentTlsUpdatesLeaveOneWholeSet) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok({"context", "create", "--name", "t", "--builder", "tcp", "--builder-address",
           "127.0.0.1:1000"});
  // Real pairs: create and update check that a key is its certificate's.
  struct TlsSet {
    fs::path ca, cert, key;
  };
  std::map<std::string, TlsSet> sets;
  std::vector<std::vector<std::string>> updates;
  for (const std::string set : {"A", "B"}) {
    fs::path dir = home() / ("set" + set);
    TlsPairFiles client = make_tls_pair(dir, "client");
    sets[set] = {make_tls_pair(dir, "ca").cert, client.cert, client.key};
    updates.push_back({"context", "update", "t", "--builder-tls-ca", sets[set].ca.string(),
                       "--builder-tls-cert", client.cert.string(), "--builder-tls-key",
                       client.key.string()});
  }
  for (int round = 1; round <= 8; ++round) {
    run_at_once({updates[0], updates[1], updates[0], updates[1]}, base_env());
    json::object ctx = stored_context(read_store(), "t");
    fs::path files = config_dir() / "contexts.d" / std::string(ctx.at("id").as_string()) / "files";
    std::string ca = read_text(files / "tls-ca");
    const TlsSet& set = ca == read_text(sets["A"].ca) ? sets["A"] : sets["B"];
    EXPECT_EQ(ca, read_text(set.ca)) << "round " << round;
    EXPECT_EQ(read_text(files / "tls-cert"), read_text(set.cert)) << "round " << round;
    EXPECT_EQ(read_text(files / "tls-key"), read_text(set.key)) << "round " << round;
    // Nothing staged is left behind.
    for (const auto& entry : fs::directory_iterator(files)) {
      EXPECT_EQ(entry.path().filename().string().rfind('.', 0), std::string::npos) << entry.path();
    }
  }
}

}  // namespace
}  // namespace envd::test
