// Threads that carry a connection after the call that made it returned, with
// an owner that stops and joins them.
//
// A driver's dial() often hands the core one end of a socketpair and keeps
// copying between the other end and the real connection (a hijacked exec's
// stdio frames, a TLS stream). Those copy threads are never detached: a Relay
// owns them, and destroying a Relay stops it and joins them, on every path.
//
//   int pair[2];
//   ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
//   auto relay = envd::sdk::Relay::between("dial-stdio pump", engine_fd, pair[1]);
//   if (!relay) { ::close(pair[0]); return relay.error(); }  // both fds closed
//   envd::sdk::relay_registry().adopt(std::move(*relay));
//   return pair[0];  // the core reads and writes this end and closes it when done
//
// Lifetime. The relay must outlive the call that starts it, and the core, which
// closes its end of the transport when the build is done, knows nothing of the
// threads behind it. So a relay is handed to relay_registry(): the registry of
// this copy of the SDK (the SDK is compiled into each module and into the core,
// so each has its own). The registry joins the relays that finished whenever a
// new one is adopted, and at exit (it is a function-local static, destroyed
// with the other static objects) it stops and joins those still running. A hook
// must therefore use only what outlives the registry: capture what it needs by
// shared_ptr rather than pointing at another static object.
//
// Stopping. stop() shuts down (shutdown(2), SHUT_RDWR) the descriptors the relay
// owns, so reads and writes blocked on them return, and calls the stop hook of a
// Relay::run job; the threads then end on their own. The descriptors are closed
// only once every thread of the relay ended (never under a running thread, so
// a stop never reaches a descriptor number that was reused).
//
// Errors: starting a relay fails with Errc::internal "cannot start the <name>
// thread: <why>" when the system refuses a thread; the descriptors it was
// given are closed then too.
//
// Thread-safety: stop(), finished() and join() may be called from any thread;
// a RelayRegistry may be used from several threads at once. Hooks run on the
// relay's own threads.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "envd/result.hpp"

namespace envd::sdk {

// Writes all of `data` to the other end of a direction; false once that end
// refuses (its reader is gone).
using RelayForward = std::function<bool(std::string_view data)>;

// Hooks of one direction of Relay::between, both optional.
struct RelayDirection {
  // Decides what each piece read from this direction's source becomes: it may
  // pass it on with `forward`, change it, or keep it (the dial-stdio pump
  // demultiplexes the Engine's stdio frames here). Returning false ends the
  // direction. Unset: the piece is forwarded as is and the direction ends when
  // forwarding fails.
  std::function<bool(std::string_view data, const RelayForward& forward)> filter;
  // Called once, on the direction's thread, when the direction ended (end of
  // input, an error, the filter said so, or stop()), before the end is passed
  // on to the other side.
  std::function<void()> on_end;
};

class Relay {
 public:
  // Copies between two connected stream sockets `a` and `b`, which it takes
  // (blocking descriptors), on two threads: a -> b and b -> a. A direction
  // ends at end of input or a read error of its source, or as its filter says;
  // its end is then passed on as shutdown(SHUT_WR) of its destination, so the
  // peer of that socket reads end of input (a half-close travels through).
  // Both descriptors are closed when both directions ended. `name` names the
  // relay in errors, e.g. "dial-stdio pump".
  static Result<Relay> between(std::string_view name, int a, int b, RelayDirection a_to_b = {},
                               RelayDirection b_to_a = {});

  // Runs `job` on one thread: for a relay whose copying is not two blocking
  // loops (e.g. an event loop over a TLS stream, which one thread must drive).
  // `on_stop`, if set, must make the job return soon; stop() calls it at most
  // once, from the stopping thread, and only while the job runs. `fds` are
  // taken as by between(): shut down by stop() (so they must be sockets for a
  // stop to wake a read) and closed once the job returned.
  static Result<Relay> run(std::string_view name, std::function<void()> job,
                           std::function<void()> on_stop = {}, std::vector<int> fds = {});

  Relay(Relay&&) noexcept;
  Relay& operator=(Relay&&) noexcept;  // the relay assigned over is destroyed first
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;
  // Stops the relay unless it finished, and joins its threads.
  ~Relay();

  // Asks the threads to end (see "Stopping" above). Idempotent.
  void stop();
  // True once every thread of the relay returned (join() will not wait).
  bool finished() const;
  // Waits for the threads to end; it does not stop them.
  void join();

 private:
  struct State;
  explicit Relay(std::shared_ptr<State> state);
  static Result<Relay> start(std::string_view name, std::shared_ptr<State> state);

  std::shared_ptr<State> state_;  // null once moved from
};

// Keeps relays until they finish; see "Lifetime" above.
class RelayRegistry {
 public:
  RelayRegistry() = default;
  // stop_all().
  ~RelayRegistry();
  RelayRegistry(const RelayRegistry&) = delete;
  RelayRegistry& operator=(const RelayRegistry&) = delete;

  // Joins and drops the relays that finished, then keeps `relay` until it
  // finishes (or stop_all()).
  void adopt(Relay relay);
  // Joins and drops the relays that finished; returns how many are still kept.
  std::size_t reap();
  // Stops every relay kept, joins them and drops them.
  void stop_all();

 private:
  std::mutex mutex_;
  std::vector<Relay> relays_;  // guarded by mutex_
};

// The registry of this copy of the SDK, created on first use and stopped and
// joined when the process exits.
RelayRegistry& relay_registry();

}  // namespace envd::sdk
