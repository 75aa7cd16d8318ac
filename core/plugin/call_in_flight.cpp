#include "plugin/call_in_flight.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace envd::plugin {

struct CallInFlightAccess {
  static const char* driver(const CallInFlight& call) { return call.driver_.c_str(); }
  static const char* verb(const CallInFlight& call) { return call.verb_; }
};

namespace {

constexpr int kExitFailure = 1;  // as main's failures

// Every call in flight, in the order they began (calls_in_flight()).
std::mutex& calls_mutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}
std::vector<const CallInFlight*>& calls() {
  static auto* all = new std::vector<const CallInFlight*>();
  return *all;
}

// The innermost call of this thread, or nullptr.
// A crash is delivered to the thread that faulted, so the handler reads its
// own thread's call. (envd's libraries are linked in statically: the access
// needs no allocation, as a signal handler requires.)
thread_local const CallInFlight* tl_in_flight = nullptr;

void write_all(const char* text) {
  std::size_t left = std::strlen(text);
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, text, left);
    if (n <= 0) return;
    text += n;
    left -= static_cast<std::size_t>(n);
  }
}

// The signal's name, without strsignal() (not async-signal-safe).
const char* signal_name(int signal) {
  switch (signal) {
    case SIGSEGV:
      return "Segmentation fault";
    case SIGBUS:
      return "Bus error";
    case SIGILL:
      return "Illegal instruction";
    case SIGFPE:
      return "Floating point exception";
    case SIGABRT:
      return "Aborted";
    default:
      return "signal";
  }
}

void on_fatal_signal(int signal) {
  // SA_RESETHAND has put the default action back: raised again, it ends the
  // process as the signal would have (a core dump where one is kept).
  if (const CallInFlight* call = tl_in_flight; call != nullptr) {
    char number[16];
    int at = sizeof number - 1;
    number[at] = '\0';
    for (int n = signal; n > 0 || at == static_cast<int>(sizeof number) - 1; n /= 10) {
      number[--at] = static_cast<char>('0' + n % 10);
    }
    write_all("envd: error: ");
    write_all(CallInFlightAccess::driver(*call));
    write_all(" crashed in ");
    write_all(CallInFlightAccess::verb(*call));
    write_all(" (signal ");
    write_all(number + at);
    write_all(": ");
    write_all(signal_name(signal));
    write_all("); envd cannot go on\n");
  }
  ::raise(signal);
}

void on_exit() {
  if (const CallInFlight* call = tl_in_flight; call != nullptr) {
    // What the command printed goes out first, as main's own failures do.
    std::fflush(nullptr);
    write_all("envd: error: ");
    write_all(CallInFlightAccess::driver(*call));
    write_all(" called exit() in ");
    write_all(CallInFlightAccess::verb(*call));
    write_all(", which ends envd\n");
    // The module's status is not envd's: exit(0) from a verb is no success
    // (a script would take `envd run` for done), and exit(7) is outside
    // envd's codes. The handlers registered after this one, the module's own
    // (its relays) among them, have run; stdio was flushed above.
    ::_exit(kExitFailure);
  }
}

}  // namespace

CallInFlight::CallInFlight(const std::string& driver, const char* verb)
    : driver_(driver), verb_(verb), outer_(tl_in_flight) {
  tl_in_flight = this;
  std::lock_guard lock(calls_mutex());
  calls().push_back(this);
}

CallInFlight::~CallInFlight() {
  tl_in_flight = outer_;
  std::lock_guard lock(calls_mutex());
  auto& all = calls();
  all.erase(std::find(all.begin(), all.end(), this));
}

std::string calls_in_flight() {
  std::lock_guard lock(calls_mutex());
  std::string said;
  for (const CallInFlight* call : calls()) {
    if (!said.empty()) said += ", ";
    said.append(CallInFlightAccess::driver(*call))
        .append(" in ")
        .append(CallInFlightAccess::verb(*call));
  }
  return said;
}

void install_crash_report() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int signal : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
      struct sigaction current {};
      if (::sigaction(signal, nullptr, &current) != 0 || current.sa_handler != SIG_DFL ||
          (current.sa_flags & SA_SIGINFO) != 0) {
        continue;
      }
      struct sigaction action {};
      action.sa_handler = on_fatal_signal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_RESETHAND | SA_NODEFER;
      ::sigaction(signal, &action, nullptr);
    }
    std::atexit(on_exit);
  });
}

}  // namespace envd::plugin
