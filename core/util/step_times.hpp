// ENVD_TIMINGS=1: step timestamps measured from the moment the kernel created
// the process, not from main(), so that start-up (exec, the dynamic loader,
// static constructors, envd handing the command over to envd-client) is
// counted too.
//
//   auto& times = util::StepTimes::global();
//   times.start(*util::process_start());  // once, when ENVD_TIMINGS is set
//   times.mark("connected");              // from any thread
//   fmt::print(stderr, "{}\n", times.report());
//
// One global() per process image: envd-client, which replaces envd in the
// same process, starts its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envd/result.hpp"

namespace envd::util {

// When the process began, on std::chrono::steady_clock (CLOCK_MONOTONIC).
struct ProcessStart {
  std::chrono::steady_clock::time_point at;
  // How far `at` may be from the truth: 1 us with taskstats, one clock tick
  // (10 ms with the usual USER_HZ of 100) with /proc/self/stat.
  std::chrono::nanoseconds resolution{0};
  const char* method = "";  // "taskstats" or "/proc/self/stat"
};

// Reads the process's age from the kernel (method in step_times.cpp); costs a
// netlink round trip (tens of microseconds). Errors when neither source
// answers (no /proc, a kernel without taskstats and /proc).
Result<ProcessStart> process_start();

// The pure part of the /proc/self/stat fallback, for tests: `start_ticks` is
// field 22 of /proc/self/stat (clock ticks after boot, truncated), `boot_now`
// CLOCK_BOOTTIME and `mono_now` CLOCK_MONOTONIC read together.
ProcessStart process_start_from_ticks(std::uint64_t start_ticks, long ticks_per_second,
                                      std::chrono::nanoseconds boot_now,
                                      std::chrono::steady_clock::time_point mono_now);

// Named instants of one process, relative to its start. Thread-safe.
class StepTimes {
 public:
  using Clock = std::chrono::steady_clock;

  // The process's own recorder (one per copy of the core, see above).
  static StepTimes& global();

  // Enables recording with `origin` as time zero; marks before this are
  // dropped. Calling it again keeps the first origin.
  void start(const ProcessStart& origin);
  bool started() const;

  // Records `step` at now (or `at`). A step already recorded keeps its first
  // time, so a mark in a loop or a retry says when it first happened.
  void mark(std::string_view step);
  void mark(std::string_view step, Clock::time_point at);

  // The time of `step` since the process began, if recorded.
  std::optional<std::chrono::nanoseconds> since_start(std::string_view step) const;

  // "since process start (taskstats, +-1 us): main 4.210 ms, connected ..."
  // in the order the steps happened; "" when not started.
  std::string report() const;

 private:
  mutable std::mutex mutex_;
  bool started_ = false;
  ProcessStart origin_;
  std::vector<std::pair<std::string, Clock::time_point>> marks_;
};

}  // namespace envd::util
