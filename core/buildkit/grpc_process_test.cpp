// GrpcWarmUp in a process of its own (its own test program): gRPC must not
// have been started by anything else, or the threads it starts could not be
// told apart.
#include "buildkit/grpc_process.hpp"

#include <dirent.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace envd::buildkit {
namespace {

using namespace std::chrono_literals;

std::set<std::string> thread_ids() {
  std::set<std::string> ids;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return ids;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") ids.insert(name);
  }
  ::closedir(dir);
  return ids;
}

// The thread's blocked signals (SigBlk of /proc/self/task/<id>/status), or
// nullopt when it has ended since it was listed.
std::optional<std::uint64_t> blocked_signals(const std::string& id) {
  std::ifstream status("/proc/self/task/" + id + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("SigBlk:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  }
  return std::nullopt;
}

bool blocks(std::uint64_t mask, int signal) { return (mask >> (signal - 1)) & 1U; }

TEST(GrpcWarmUp, TheThreadsGrpcStartsFromItHaveSigintAndSigtermBlocked) {
  ASSERT_FALSE(grpc_is_initialized()) << "gRPC was started before the test";
  const auto before = thread_ids();
  {
    GrpcWarmUp warm_up;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!grpc_is_initialized() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(grpc_is_initialized());
    int checked = 0;
    for (const auto& id : thread_ids()) {
      if (before.count(id) != 0) continue;
      auto mask = blocked_signals(id);
      if (!mask) continue;
      EXPECT_TRUE(blocks(*mask, SIGINT)) << "thread " << id << " takes SIGINT";
      EXPECT_TRUE(blocks(*mask, SIGTERM)) << "thread " << id << " takes SIGTERM";
      ++checked;
    }
    // gRPC's timer thread at least; the test's own thread keeps its signals.
    EXPECT_GT(checked, 0) << "gRPC started no thread";
    auto own = blocked_signals(std::to_string(::gettid()));
    ASSERT_TRUE(own);
    EXPECT_FALSE(blocks(*own, SIGINT));
  }
  // The warm-up held gRPC's only reference: gRPC is shut down with it.
  EXPECT_FALSE(grpc_is_initialized());
}

TEST(GrpcWarmUp, OneDestroyedAtOnceStillStartsAndStopsGrpcCleanly) {
  for (int i = 0; i < 20; ++i) {
    GrpcWarmUp warm_up;
  }
  EXPECT_FALSE(grpc_is_initialized());
}

}  // namespace
}  // namespace envd::buildkit
