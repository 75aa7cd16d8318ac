#include "util/step_times.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace envd::util {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(ProcessStart, IsInThePastAndNotBeforeTheTestBegan) {
  // This test process started before main(), and not hours ago.
  auto start = process_start();
  ASSERT_TRUE(start) << start.error().message();
  auto age = Clock::now() - start->at;
  EXPECT_GT(age, 0ns);
  EXPECT_LT(age, std::chrono::hours(1));
  EXPECT_LE(start->resolution, 10ms);
}

TEST(ProcessStart, AForkedChildIsYoungerThanItsParent) {
  // A child forked after this instant reports a start after it (within the
  // method's resolution).
  auto before = Clock::now();
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto start = process_start();
    std::int64_t ns = start ? (start->at - before).count() + start->resolution.count() : -1;
    (void)!::write(pipe_fds[1], &ns, sizeof ns);
    ::_exit(0);
  }
  std::int64_t slack_ns = 0;
  ASSERT_EQ(::read(pipe_fds[0], &slack_ns, sizeof slack_ns), static_cast<ssize_t>(sizeof slack_ns));
  ::waitpid(pid, nullptr, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_GE(slack_ns, 0);
  EXPECT_LT(slack_ns, std::chrono::nanoseconds(1s).count());
}

TEST(ProcessStart, FromTicksTakesTheMiddleOfTheTick) {
  auto mono = Clock::time_point(100s);
  // Started at tick 250 (2.50 s after boot at 100 Hz), now 3 s after boot.
  auto start = process_start_from_ticks(250, 100, 3s, mono);
  EXPECT_EQ(start.resolution, 5ms);
  EXPECT_EQ(mono - start.at, 495ms);
  EXPECT_STREQ(start.method, "/proc/self/stat");
}

TEST(StepTimes, RecordsNothingUntilStarted) {
  StepTimes times;
  times.mark("early");
  EXPECT_EQ(times.report(), "");
  EXPECT_FALSE(times.since_start("early"));
}

TEST(StepTimes, KeepsTheFirstTimeOfAStepAndReportsInOrder) {
  StepTimes times;
  ProcessStart origin;
  origin.at = Clock::time_point(10s);
  origin.resolution = 1us;
  origin.method = "taskstats";
  times.start(origin);
  times.mark("solve", Clock::time_point(10s + 20ms));
  times.mark("connected", Clock::time_point(10s + 12500us));
  times.mark("solve", Clock::time_point(10s + 30ms));
  EXPECT_EQ(times.since_start("solve"), std::chrono::nanoseconds(20ms));
  EXPECT_EQ(times.report(),
            "since process start (taskstats, +-1 us): connected 12.500 ms, solve 20.000 ms");
}

}  // namespace
}  // namespace envd::util
