// One BuildKit session: the reverse-direction gRPC server the daemon calls
// during a build (health checks, FileSync, FileSend, Auth, ...).
//
// The server has no listening port: it serves one connection handed to it
// through grpc::AddInsecureChannelFromFd, on which the daemon is the HTTP/2
// client. That connection is either
//  - a tunnel (open()): one end of a socketpair, whose other end two pump
//    threads copy to and from the bidi Control.Session stream of the client's
//    channel; every daemon has it; or
//  - direct (open_direct()): a connection of its own to the daemon, which a
//    driver opened for the session (the Docker Engine's POST /session, see
//    plugin_abi.h's dial_session): no pumps, no framing inside a stream.
// Internal to the core: Client::solve opens one per build.
//
// Thread-safety: prepare(), open() or open_direct(), and close() from one
// thread; cancel() from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envd/result.hpp"
#include "util/unique_fd.hpp"

namespace grpc {
class Channel;
}

namespace envd::buildkit {

class Attachable;

// A fresh random id (25 base-36 characters, never containing ':'), for session
// ids and solve refs. Unique per call for all practical purposes.
std::string random_id();

struct SessionOptions {
  std::string id;          // x-docker-expose-session-uuid; see random_id()
  std::string name;        // x-docker-expose-session-name (human readable)
  std::string shared_key;  // x-docker-expose-session-sharedkey (may be empty)
  std::string address;     // the daemon, for messages
};

class Session {
 public:
  // Builds and starts the session server with the default health service and
  // every attachable registered (each must outlive the session; when there is
  // any, at least one must register a gRPC service). Nothing is sent until
  // open() or open_direct(), so a client can build the server while its
  // connection is still being set up. Fails with Errc::internal if the server
  // cannot be started.
  static Result<std::unique_ptr<Session>> prepare(const std::vector<Attachable*>& attachables,
                                                  SessionOptions options);

  // Opens the Control.Session stream on `channel` advertising every method,
  // and serves the session through it. Does not wait for the daemon: a
  // failure shows in the calls that need the session. Once per session (with
  // open_direct); fails with Errc::internal if the socketpair cannot be made.
  Status open(const std::shared_ptr<grpc::Channel>& channel);

  // Serves the session on `connection`, a socket to the daemon positioned
  // after its upgrade (the daemon announced the session's id and methods when
  // it was dialled). Instead of open(), once per session.
  Status open_direct(util::UniqueFd connection);

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();  // close()

  const std::string& id() const;

  // The method paths advertised to the daemon, in the order sent.
  const std::vector<std::string>& methods() const;

  // What methods() will be for a session of `attachables`, before it is
  // prepared: every attachable's, then the health service's.
  static std::vector<std::string> advertised_methods(const std::vector<Attachable*>& attachables);

  // Ends the session. A tunnel: half-closes the stream (the daemon then drops
  // the session), waits briefly for the daemon to end it, cancels it
  // otherwise and joins the pumps. A direct connection: closes it (the daemon
  // then drops the session). Then shuts the server down with a deadline
  // (only that for a session never opened). Idempotent; never blocks for more
  // than a few seconds.
  void close();

  // For a direct connection the other end closed or reset before close():
  // why, in a few words ("Connection reset by peer", "the connection was
  // closed"). The reason is the kernel's best word at that moment: a reset
  // reads as a plain close once the session server's own read has taken the
  // socket's error. nullopt while it is up, and for a tunnel (whose loss
  // fails the build's own channel, which says so).
  std::optional<std::string> connection_lost() const;

  // Cancels the stream, or closes the direct connection, at once (for
  // cancelled builds). Safe from any thread once open() or open_direct()
  // returned.
  void cancel();

 private:
  struct State;
  explicit Session(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace envd::buildkit
