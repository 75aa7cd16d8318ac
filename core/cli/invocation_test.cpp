// What an Invocation holds for the process's end (leave_to_exit): alive as
// long as the invocation, then released newest first, as locals would be.
#include "cli/invocation.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace envd::cli {
namespace {

// Records its name in `log` when destroyed.
class Recorder {
 public:
  Recorder(std::vector<std::string>& log, std::string name) : log_(log), name_(std::move(name)) {}
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  ~Recorder() { log_.push_back(name_); }

 private:
  std::vector<std::string>& log_;
  std::string name_;
};

TEST(InvocationTest, NothingLeftToExitByDefault) {
  Invocation invocation;
  EXPECT_FALSE(invocation.leaves_anything_to_exit());
}

TEST(InvocationTest, WhatIsLeftToExitLivesAsLongAsTheInvocation) {
  std::vector<std::string> log;
  std::weak_ptr<Recorder> watched;
  {
    Invocation invocation;
    auto grpc = std::make_shared<Recorder>(log, "grpc");
    watched = grpc;
    invocation.leave_to_exit(std::move(grpc));
    EXPECT_TRUE(invocation.leaves_anything_to_exit());
    EXPECT_FALSE(watched.expired());
    EXPECT_TRUE(log.empty());
  }
  EXPECT_TRUE(watched.expired());
  EXPECT_EQ(log, std::vector<std::string>{"grpc"});
}

// gRPC is handed over before the channel that needs it, and must outlive it.
TEST(InvocationTest, WhatIsLeftToExitGoesNewestFirst) {
  std::vector<std::string> log;
  {
    Invocation invocation;
    invocation.leave_to_exit(std::make_shared<Recorder>(log, "grpc"));
    invocation.leave_to_exit(std::make_shared<Recorder>(log, "client"));
    invocation.leave_to_exit(std::make_shared<Recorder>(log, "latest"));
  }
  EXPECT_EQ(log, (std::vector<std::string>{"latest", "client", "grpc"}));
}

}  // namespace
}  // namespace envd::cli
