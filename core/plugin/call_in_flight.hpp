// What a module was doing when it took envd down. A module runs in envd's
// process: a crash (SIGSEGV, SIGBUS, ...), abort() or exit() inside one of
// its verbs ends envd, which cannot recover from it. What envd can do is say
// which driver and verb did it, in one line, instead of ending without a word.
#pragma once

#include <string>

namespace envd::plugin {

// Marks the calling thread as inside `driver`'s `verb` ("builder 'tcp'",
// "dial") while it lives. Nests (the innermost is named).
class CallInFlight {
 public:
  CallInFlight(const std::string& driver, const char* verb);
  ~CallInFlight();
  CallInFlight(const CallInFlight&) = delete;
  CallInFlight& operator=(const CallInFlight&) = delete;

 private:
  friend struct CallInFlightAccess;
  std::string driver_;
  const char* verb_;
  const CallInFlight* outer_;
};

// Installs, once per process, the handlers that report a call in flight:
// for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT (only where the signal's
// action is still the default: a sanitizer's own handler is left alone) they
// write "envd: error: <driver> crashed in <verb> (signal N: <name>); envd
// cannot go on" and end the process by the same signal; an exit() from inside
// a call writes "envd: error: <driver> called exit() in <verb>, which ends
// envd" and ends the process with status 1, whatever the module's. Outside
// a call nothing is written and the process ends as it would have.
void install_crash_report();

// The calls in flight on any thread, outermost first, for a message: "builder
// 'tcp' in dial" (", "-separated), or "" when none is.
std::string calls_in_flight();

}  // namespace envd::plugin
