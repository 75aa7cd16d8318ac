// The core's BuildKit client: one gRPC channel to a daemon, opened on the
// transport a builder driver handed over (a connected socket, or a gRPC target
// with optional TLS). Every builder shares it; no driver module links gRPC.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "envd/result.hpp"
#include "plugin/module_handles.hpp"

namespace envd::buildkit {

class ProgressSink;

// One rule of a worker's garbage collection (WorkerRecord.GCPolicy): keep
// `keep_bytes` of the records `filters` select (all of them with `all`),
// those used within `keep_duration` regardless.
struct GcRule {
  bool all = false;
  std::chrono::seconds keep_duration{0};
  std::int64_t keep_bytes = 0;
  std::vector<std::string> filters;
};

struct Worker {
  std::string id;
  std::vector<std::string> platforms;  // "linux/amd64", ...
  std::map<std::string, std::string> labels;
  std::vector<GcRule> gc_policy;  // empty: the daemon collects no garbage (or does not say)
};

struct DaemonInfo {
  std::string version;  // BuildKit version from Info, or "" when the daemon lacks Info
  std::vector<Worker> workers;
};

// One export of a solve: an exporter type and its attributes, passed to the
// daemon unchanged.
struct Export {
  std::string type;
  std::map<std::string, std::string> attrs;
};

// One cache exporter or importer of a solve (CacheOptionsEntry): a type
// ("registry", "local", "inline", ...) and its attributes, passed to the daemon
// unchanged. Imports are also handed to the frontend as its "cache-imports"
// attribute (JSON), as BuildKit's own client does, so the Dockerfile frontend
// can match its steps against them.
struct CacheEntry {
  std::string type;
  std::map<std::string, std::string> attrs;
};

struct SolveRequest {
  std::string frontend = "dockerfile.v0";  // "" for raw LLB (then set definition)
  std::map<std::string, std::string> frontend_attrs;
  // A serialized pb.Definition (raw LLB), sent when non-empty. Must be empty
  // when `frontend` is set.
  std::string definition;
  std::vector<Export> exports;
  std::vector<std::string> entitlements;  // e.g. "network.host"
  std::vector<CacheEntry> cache_exports;
  std::vector<CacheEntry> cache_imports;
  // Session name and shared key (x-docker-expose-session-name/-sharedkey). The
  // shared key lets the daemon reuse an earlier context transfer of the same
  // directory; empty is fine. The session id and solve ref are always fresh.
  std::string session_name;  // "" means "envd"
  std::string session_shared_key;
  // What the exports above took for granted about the daemon's workers (a
  // remembered answer, used before the connect probe has answered; see
  // Client::Probe::concurrent). Once the probe answers, a solve for which this
  // returns false is cancelled and returns Errc::unavailable "... is not the
  // daemon this build was planned for"; the caller plans again from
  // Client::workers(). Empty: nothing assumed.
  std::function<bool(const std::vector<Worker>&)> assumed_workers;
};

struct SolveResult {
  std::map<std::string, std::string> exporter_response;
};

// Cancels a running solve from another thread or a signal handler's helper
// thread. Once cancelled, stays cancelled. Copies share one state, so a copy
// handed to a watcher thread cancels the original. Thread-safe.
class CancelToken {
 public:
  CancelToken();
  // Cancels every gRPC call of a solve using this token (and any later solve).
  void cancel();
  bool cancelled() const;

  struct State;  // implementation detail (client.cpp), public for its helpers

 private:
  std::shared_ptr<State> state_;
  friend class Client;
};

// What BuildKit's Prune removes: with `all` every unused record (else only
// the ones BuildKit deems reclaimable, as its GC would), keeping records used
// within `keep_duration` and `keep_bytes` of storage (0: no such limit).
struct PruneOptions {
  bool all = false;
  std::chrono::nanoseconds keep_duration{0};
  std::int64_t keep_bytes = 0;
  std::vector<std::string> filters;  // BuildKit filter expressions, e.g. "type==source.local"
};

struct PruneResult {
  std::size_t records = 0;           // cache records removed
  std::int64_t reclaimed_bytes = 0;  // the sum of their sizes
};

// The ListWorkers filter that lets every worker through but the one in
// `expected` (containerd's filter syntax, `id!="<id>"`), or "" when there is
// nothing such a filter can confirm: not exactly one worker, or an id with
// characters the filter would have to escape.
std::string filter_excluding(const std::vector<Worker>& expected);

class Client {
 public:
  // Opens the channel and waits, up to `deadline`, until the daemon answers
  // ListWorkers. Errors read "cannot connect to buildkitd at <address>: <reason>"
  // with a readable reason ("connection refused", "connection closed by the
  // daemon", "no answer within 10s", ...): Errc::unavailable when the daemon
  // is not there, Errc::timeout when it accepted but did not answer in time.
  // A target transport is redialled with backoff until the deadline (the
  // daemon may still be starting); an fd transport fails at the first refusal.
  // Takes the transport's fd (gRPC owns it from then on). Cancelling `cancel`
  // (optional) ends the attempt within a fraction of a second:
  // Errc::cancelled "connecting to buildkitd at <address> cancelled".
  //
  // With Probe::concurrent, connect() returns as soon as the channel exists
  // and the probe runs on its own thread (a build's first Solve byte need not
  // wait a round trip the build does not use: a standalone buildkitd takes
  // about 15 ms to answer ListWorkers). Until the probe has answered, solve()
  // sends its calls once the connection is up rather than failing on a
  // daemon that still refuses; when the probe fails,
  // every solve on the client is cancelled and probe_status() says why, in
  // the words above. A probe still running when the client is destroyed is
  // cancelled.
  //
  // `expected`, when given, is what the caller believes the daemon has (the
  // last build's answer). BuildKit runs its platform detection on every
  // ListWorkers (it executes a test binary per foreign architecture: 8 to 17
  // ms of the daemon's CPU here, taken from the solve beside it), but only
  // for the workers the request's filter lets through. So for one expected
  // worker the probe asks for every worker but that one: an empty answer says
  // the daemon has exactly it (every daemon has a worker), and workers() is
  // `expected`; any other answer is followed by a full ListWorkers.
  enum class Probe { wait, concurrent };
  static Result<Client> connect(plugin::Transport transport, std::chrono::milliseconds deadline,
                                const CancelToken* cancel = nullptr, Probe probe = Probe::wait,
                                std::vector<Worker> expected = {});

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // The daemon's address as shown in messages (the transport's description).
  const std::string& address() const;

  // Opens a connection of its own for a solve's session (the driver's
  // dial_session, plugin_abi.h ABI 1.4), or fails with Errc::unsupported.
  using SessionDialer = std::function<Result<util::UniqueFd>(const plugin::SessionSpec&)>;

  // From then on each solve() first asks `dialer` for a direct session
  // connection, while it waits for the channel, and serves its session there;
  // when the dialer answers Errc::unsupported, that solve and every later one
  // tunnel the session through Control.Session, as without a dialer. Any
  // other failure fails the solve: "cannot open a session to buildkitd at
  // <address>: <reason>". Call before the first solve.
  void set_session_dialer(SessionDialer dialer);

  // The workers the daemon listed when connect() probed it (the probe is a
  // ListWorkers call): what a build needs to choose its exporter, without
  // another round trip. Same form as info()'s. Waits for a concurrent probe;
  // empty when it failed.
  const std::vector<Worker>& workers() const;

  // The probe's outcome (waits for a concurrent one): ok, or connect()'s
  // error for it ("cannot connect to buildkitd at <address>: <reason>").
  Status probe_status() const;

  // Whether the probe has ended (answered or failed), without waiting.
  bool probe_ended() const;

  // Whether the driver said that nothing of it runs for this connection
  // (ENVD_TRANSPORT_SELF_CONTAINED, docs/design/plugin-abi.md). Only then may
  // the client outlive its driver, left to the process's end; a driver that
  // relays its socket, or stands a helper behind its target, keeps the
  // orderly teardown.
  bool self_contained() const;

  // Version (Info; empty before BuildKit v0.11) and workers (ListWorkers),
  // platforms as "os/arch[/variant]". Errors read "cannot query buildkitd at
  // <address>: <reason>".
  Result<DaemonInfo> info(std::chrono::milliseconds deadline);

  // Runs one solve: opens a session serving `attachables` (fresh session id
  // and ref), calls Solve and Status concurrently, feeds every status update to
  // `progress` (in order, one call at a time), closes the session when Solve
  // returns, then calls progress.done() exactly once (also on failure).
  // Exports go into SolveRequest fields 3/4 (the first) and 13 (all).
  // Errors: a failed build carries the daemon's message unchanged (code from
  // the gRPC status); a lost connection is Errc::unavailable "lost the
  // connection to buildkitd at <address>: <reason>", reported as soon as the
  // socket closes; cancelling `cancel` (before or during) cancels the solve on
  // the daemon and returns Errc::cancelled. Thread-safe: several solves may
  // run at once on one client, each with its own sink.
  // The Solve goes out before the session is open (the daemon waits for the
  // session it names); a session that cannot be opened cancels it and is
  // what the solve reports.
  Result<SolveResult> solve(const SolveRequest& request,
                            const std::vector<class Attachable*>& attachables,
                            ProgressSink& progress, const CancelToken& cancel);

  // Calls Prune and counts the UsageRecords the daemon streams back, each one
  // a removed record. Errors read "cannot prune the cache of buildkitd at
  // <address>: <reason>"; `cancel` cancels the call (Errc::cancelled); the
  // whole call must finish within `deadline`.
  Result<PruneResult> prune(const PruneOptions& options, std::chrono::milliseconds deadline,
                            const CancelToken& cancel);

  // The PruneRequest prune() sends for `options`, serialised (for tests).
  static std::string prune_request_bytes(const PruneOptions& options);

 private:
  struct State;
  explicit Client(std::unique_ptr<State> state);
  // Until the channel is READY, or a concurrent probe ended (true when it
  // answered), or `ends` fired (false).
  bool wait_until_connected(const CancelToken& ends) const;
  std::unique_ptr<State> state_;
};

}  // namespace envd::buildkit
