// One BuildKit session: the reverse-direction gRPC server the daemon calls
// during a build (health checks, FileSync, FileSend, Auth, ...), tunnelled
// through the bidi Control.Session stream of the client's channel.
//
// The server has no listening port. It is fed one end of a socketpair through
// grpc::AddInsecureChannelFromFd; two pump threads copy bytes between the other
// end and the Session stream. Internal to the core: Client::solve opens one per
// build.
//
// Thread-safety: prepare(), open() and close() from one thread; cancel() from
// any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "envd/result.hpp"

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
  // open(), so a client can build the server while its connection is still
  // being set up. Fails with Errc::internal if the socketpair or the server
  // cannot be created.
  static Result<std::unique_ptr<Session>> prepare(const std::vector<Attachable*>& attachables,
                                                  SessionOptions options);

  // Opens the Control.Session stream on `channel` advertising every method.
  // Does not wait for the daemon: a failure shows in the calls that need the
  // session. Once per session.
  void open(const std::shared_ptr<grpc::Channel>& channel);

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();  // close()

  const std::string& id() const;

  // The method paths advertised to the daemon, in the order sent.
  const std::vector<std::string>& methods() const;

  // Ends the session: half-closes the stream (the daemon then drops the
  // session), waits briefly for the daemon to end it, cancels it otherwise,
  // joins the pumps and shuts the server down with a deadline (only the last
  // for a session never opened). Idempotent; never blocks for more than a few
  // seconds.
  void close();

  // Cancels the stream at once (for cancelled builds). Safe from any thread.
  void cancel();

 private:
  struct State;
  explicit Session(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace envd::buildkit
