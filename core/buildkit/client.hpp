// The core's BuildKit client: one gRPC channel to a daemon, opened on the
// transport a builder driver handed over (a connected socket, or a gRPC target
// with optional TLS). Every builder shares it; no driver module links gRPC.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "envd/result.hpp"
#include "plugin/driver.hpp"

namespace envd::buildkit {

class Session;
class ProgressSink;

struct Worker {
  std::string id;
  std::vector<std::string> platforms;  // "linux/amd64", ...
  std::map<std::string, std::string> labels;
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

struct SolveRequest {
  std::string frontend = "dockerfile.v0";
  std::map<std::string, std::string> frontend_attrs;
  std::vector<Export> exports;
  std::vector<std::string> entitlements;  // e.g. "network.host"
};

struct SolveResult {
  std::map<std::string, std::string> exporter_response;
};

// Cancels a running solve from another thread or a signal handler's helper
// thread. Once cancelled, stays cancelled.
class CancelToken {
 public:
  void cancel();
  bool cancelled() const;

 private:
  struct State;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  friend class Client;
};

class Client {
 public:
  // Opens the channel and waits, up to `deadline`, until the daemon answers
  // ListWorkers. Errors read "cannot connect to buildkitd at <address>: <reason>"
  // (Errc::unavailable, or Errc::timeout when the deadline passed).
  static Result<Client> connect(plugin::Transport transport, std::chrono::milliseconds deadline);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // The daemon's address as shown in messages (the transport's description).
  const std::string& address() const;

  // Version (Info; empty before BuildKit v0.11) and workers (ListWorkers).
  Result<DaemonInfo> info(std::chrono::milliseconds deadline);

  // Runs one solve: opens a session serving `attachables`, calls Solve and
  // Status concurrently, feeds every status update to `progress`, and closes
  // the session when Solve returns. A failed build is an error whose message is
  // the daemon's; cancelling `cancel` cancels the solve on the daemon and
  // returns Errc::cancelled.
  Result<SolveResult> solve(const SolveRequest& request,
                            const std::vector<class Attachable*>& attachables,
                            ProgressSink& progress, const CancelToken& cancel);

 private:
  struct State;
  explicit Client(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace envd::buildkit
