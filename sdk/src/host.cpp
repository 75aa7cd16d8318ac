#include "envd/host.hpp"

#include <atomic>
#include <cstddef>
#include <string>
#include <thread>

#include "envd/internal/host_binding.hpp"

namespace envd::sdk {
namespace {

// The one piece of process state the SDK keeps: which host services this
// copy of the SDK (one per module) reports to. Set once, when the core hands
// the module its table; read by every thread.
std::atomic<const envd_host_api*> bound_host{nullptr};

// IgnoreCancellation guards alive in this thread.
thread_local int ignoring_cancellation = 0;

// Where each function of the table ends: a host's table carries it only if
// its struct_size reaches that far (the table grows at the end).
// NOLINTBEGIN(bugprone-sizeof-expression): the pointer member's size is meant
constexpr std::size_t kProgressEnd =
    offsetof(envd_host_api, progress) + sizeof(envd_host_api::progress);
constexpr std::size_t kLogEnd = offsetof(envd_host_api, log) + sizeof(envd_host_api::log);
constexpr std::size_t kCancelledEnd =
    offsetof(envd_host_api, cancelled) + sizeof(envd_host_api::cancelled);
// NOLINTEND(bugprone-sizeof-expression)

// The bound host if it offers the function ending at `end`, else nullptr.
const envd_host_api* host_with(std::size_t end) {
  const envd_host_api* host = bound_host.load(std::memory_order_acquire);
  return host != nullptr && host->struct_size >= end ? host : nullptr;
}

}  // namespace

void report_progress(std::string_view line) {
  const envd_host_api* host = host_with(kProgressEnd);
  if (host == nullptr || host->progress == nullptr) return;
  std::string text(line);
  host->progress(host->context, text.c_str());
}

void log(LogLevel level, std::string_view line) {
  const envd_host_api* host = host_with(kLogEnd);
  if (host == nullptr || host->log == nullptr) return;
  std::string text(line);
  host->log(host->context, static_cast<int32_t>(level), text.c_str());
}

bool cancelled() {
  if (ignoring_cancellation > 0) return false;
  const envd_host_api* host = host_with(kCancelledEnd);
  if (host == nullptr || host->cancelled == nullptr) return false;
  return host->cancelled(host->context) != 0;
}

IgnoreCancellation::IgnoreCancellation() { ++ignoring_cancellation; }
IgnoreCancellation::~IgnoreCancellation() { --ignoring_cancellation; }

Error cancelled_error(std::string_view what) {
  return Error(Errc::cancelled, std::string(what) + " cancelled");
}

bool sleep_unless_cancelled(std::chrono::milliseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  for (;;) {
    if (cancelled()) return false;
    auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(end - now, std::chrono::milliseconds(50)));
  }
}

namespace internal {

void bind_host(const envd_host_api* host) { bound_host.store(host, std::memory_order_release); }

}  // namespace internal
}  // namespace envd::sdk
