#include "util/step_times.hpp"

#include <fmt/core.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/unique_fd.hpp"

// How the process's start is found. The kernel stamps every task with its
// creation time (task_struct.start_time, CLOCK_MONOTONIC in nanoseconds, set
// at fork, so it includes the fork-to-exec gap, exec and the dynamic loader).
// Two ways to read it without privileges:
//
//  1. taskstats (generic netlink, TASKSTATS_CMD_GET for our pid): its
//     ac_etime is "now - start_time" in microseconds, computed by the kernel
//     when it answers. start = CLOCK_MONOTONIC read just after the answer -
//     ac_etime; the error is the microsecond truncation plus the few
//     microseconds between the kernel's reading and ours: about 1 us.
//  2. /proc/self/stat field 22 (starttime): the same start_time, but on
//     CLOCK_BOOTTIME and truncated to clock ticks (USER_HZ, 100 per second on
//     Linux): start lies in [ticks, ticks + 1) ticks, a 10 ms window. Used only
//     when taskstats is missing (CONFIG_TASKSTATS off, netlink filtered).
//
// /proc/self/schedstat (run time + run-queue wait) was tried and rejected:
// its run time lags by the current time slice and its wait is taken from a
// run-queue clock that may be stale, so on this machine it was off by several
// milliseconds in either direction for a process 1 ms old.
namespace envd::util {
namespace {

using std::chrono::nanoseconds;
using Clock = std::chrono::steady_clock;

nanoseconds read_clock(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return std::chrono::seconds(ts.tv_sec) + nanoseconds(ts.tv_nsec);
}

Clock::time_point steady_from(nanoseconds monotonic) {
  // steady_clock is CLOCK_MONOTONIC on Linux (libstdc++ and libc++).
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(monotonic));
}

// One generic netlink request and its answer; false on any failure.
bool netlink_exchange(int fd, std::uint16_t family, std::uint8_t command, std::uint16_t attr,
                      const void* value, std::uint16_t value_size, std::vector<char>& answer) {
  struct {
    nlmsghdr header;
    genlmsghdr genl;
    char attrs[64];
  } request{};
  auto* nla = reinterpret_cast<nlattr*>(request.attrs);
  nla->nla_type = attr;
  nla->nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + value_size);
  std::memcpy(request.attrs + NLA_HDRLEN, value, value_size);
  request.header.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN + NLA_ALIGN(nla->nla_len));
  request.header.nlmsg_type = family;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.header.nlmsg_pid = 0;
  request.genl.cmd = command;
  request.genl.version = 1;
  if (::send(fd, &request, request.header.nlmsg_len, 0) < 0) return false;
  answer.assign(8192, 0);
  ssize_t n = ::recv(fd, answer.data(), answer.size(), 0);
  if (n < static_cast<ssize_t>(NLMSG_HDRLEN + GENL_HDRLEN)) return false;
  answer.resize(static_cast<std::size_t>(n));
  const auto* reply = reinterpret_cast<const nlmsghdr*>(answer.data());
  return reply->nlmsg_type != NLMSG_ERROR && reply->nlmsg_len <= answer.size();
}

// Calls `each(type, data, size)` for every attribute in [begin, end).
template <typename F>
void for_each_attr(const char* begin, const char* end, F each) {
  while (begin + NLA_HDRLEN <= end) {
    nlattr header{};
    std::memcpy(&header, begin, sizeof header);
    if (header.nla_len < NLA_HDRLEN || begin + header.nla_len > end) return;
    each(header.nla_type & NLA_TYPE_MASK, begin + NLA_HDRLEN, header.nla_len - NLA_HDRLEN);
    begin += NLA_ALIGN(header.nla_len);
  }
}

std::optional<ProcessStart> from_taskstats() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
  if (!fd) return std::nullopt;
  timeval timeout{0, 200000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::vector<char> answer;
  static constexpr char kName[] = TASKSTATS_GENL_NAME;
  if (!netlink_exchange(fd.get(), GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, kName,
                        sizeof kName, answer)) {
    return std::nullopt;
  }
  std::uint16_t family = 0;
  const char* attrs = answer.data() + NLMSG_HDRLEN + GENL_HDRLEN;
  for_each_attr(attrs, answer.data() + answer.size(), [&](int type, const char* data, size_t size) {
    if (type == CTRL_ATTR_FAMILY_ID && size >= sizeof family) std::memcpy(&family, data, 2);
  });
  if (family == 0) return std::nullopt;
  auto pid = static_cast<std::uint32_t>(::getpid());
  if (!netlink_exchange(fd.get(), family, TASKSTATS_CMD_GET, TASKSTATS_CMD_ATTR_PID, &pid,
                        sizeof pid, answer)) {
    return std::nullopt;
  }
  const nanoseconds now = read_clock(CLOCK_MONOTONIC);
  std::optional<std::uint64_t> etime_us;
  attrs = answer.data() + NLMSG_HDRLEN + GENL_HDRLEN;
  for_each_attr(attrs, answer.data() + answer.size(), [&](int type, const char* data, size_t size) {
    if (type != TASKSTATS_TYPE_AGGR_PID) return;
    for_each_attr(data, data + size, [&](int inner, const char* stats, size_t stats_size) {
      constexpr size_t kAt = offsetof(taskstats, ac_etime);
      if (inner == TASKSTATS_TYPE_STATS && stats_size >= kAt + sizeof(std::uint64_t)) {
        std::uint64_t value = 0;
        std::memcpy(&value, stats + kAt, sizeof value);
        etime_us = value;
      }
    });
  });
  if (!etime_us) return std::nullopt;
  ProcessStart start;
  start.at = steady_from(now - std::chrono::microseconds(*etime_us));
  start.resolution = std::chrono::microseconds(1);
  start.method = "taskstats";
  return start;
}

Result<ProcessStart> from_proc_stat() {
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nanoseconds boot = read_clock(CLOCK_BOOTTIME);
  const nanoseconds mono = read_clock(CLOCK_MONOTONIC);
  // Fields after the command name (which may hold spaces and parentheses).
  auto close = text.rfind(')');
  if (close == std::string::npos) {
    return Error(Errc::internal, "cannot read the process start time from /proc/self/stat");
  }
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  // Field 3 (state) is the first after ')'; starttime is field 22.
  for (int i = 3; i <= 22 && (fields >> field); ++i) {
  }
  std::uint64_t ticks = 0;
  try {
    ticks = std::stoull(field);
  } catch (...) {
    return Error(Errc::internal, "cannot read the process start time from /proc/self/stat");
  }
  return process_start_from_ticks(ticks, ::sysconf(_SC_CLK_TCK), boot, steady_from(mono));
}

}  // namespace

ProcessStart process_start_from_ticks(std::uint64_t start_ticks, long ticks_per_second,
                                      nanoseconds boot_now, Clock::time_point mono_now) {
  if (ticks_per_second <= 0) ticks_per_second = 100;
  const nanoseconds tick = nanoseconds(std::chrono::seconds(1)) / ticks_per_second;
  // The truncated tick is the earliest the process can have started; half a
  // tick later is the middle of the window it started in.
  const nanoseconds started = tick * static_cast<std::int64_t>(start_ticks) + tick / 2;
  ProcessStart start;
  start.at = mono_now - std::chrono::duration_cast<Clock::duration>(
                            std::max(boot_now - started, nanoseconds::zero()));
  start.resolution = tick / 2;
  start.method = "/proc/self/stat";
  return start;
}

Result<ProcessStart> process_start() {
  if (auto start = from_taskstats()) return *start;
  return from_proc_stat();
}

StepTimes& StepTimes::global() {
  static StepTimes times;
  return times;
}

void StepTimes::start(const ProcessStart& origin) {
  std::lock_guard lock(mutex_);
  if (started_) return;
  started_ = true;
  origin_ = origin;
}

bool StepTimes::started() const {
  std::lock_guard lock(mutex_);
  return started_;
}

void StepTimes::mark(std::string_view step) { mark(step, Clock::now()); }

void StepTimes::mark(std::string_view step, Clock::time_point at) {
  std::lock_guard lock(mutex_);
  if (!started_) return;
  for (const auto& [name, when] : marks_) {
    if (name == step) return;
  }
  marks_.emplace_back(std::string(step), at);
}

std::optional<nanoseconds> StepTimes::since_start(std::string_view step) const {
  std::lock_guard lock(mutex_);
  if (!started_) return std::nullopt;
  for (const auto& [name, when] : marks_) {
    if (name == step) return when - origin_.at;
  }
  return std::nullopt;
}

std::string StepTimes::report() const {
  std::lock_guard lock(mutex_);
  if (!started_) return {};
  auto ordered = marks_;
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  auto ms = [](nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::string text = fmt::format("since process start ({}, +-{}): ", origin_.method,
                                 origin_.resolution >= std::chrono::milliseconds(1)
                                     ? fmt::format("{:g} ms", ms(origin_.resolution))
                                     : fmt::format("{} us", origin_.resolution.count() / 1000));
  bool first = true;
  for (const auto& [name, when] : ordered) {
    if (!first) text += ", ";
    first = false;
    text += fmt::format("{} {:.3f} ms", name, ms(when - origin_.at));
  }
  return text;
}

}  // namespace envd::util
