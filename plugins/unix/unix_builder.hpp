// The unix builder: a BuildKit daemon that someone else runs, listening on a
// unix socket (`buildkitd --addr unix:///run/buildkit/buildkitd.sock`, or a
// rootless daemon's $XDG_RUNTIME_DIR/buildkit/buildkitd.sock).
//
// Address grammar: an absolute socket path, optionally written with a
// "unix://" prefix (unix:///run/buildkit/buildkitd.sock), stored without it
// and shown as unix:///path. The path is normalised lexically ("//" and "/./"
// collapse, ".." is refused) and must fit in a sockaddr_un (107 bytes). An
// empty address means buildkitd's own default, /run/buildkit/buildkitd.sock.
// There are no options.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class UnixBuilder final : public sdk::BuilderDriver {
 public:
  static constexpr const char* default_socket = "/run/buildkit/buildkitd.sock";

  Result<std::string> normalize_address(const std::string& address) const override;

  // Connects the socket (non-blocking connect, bounded by the request's
  // timeout) and hands the connected fd to the core. A missing socket, a path
  // that is not a socket, no listener and no permission each fail with their
  // own message (Errc::unavailable, Errc::permission or Errc::timeout).
  Result<sdk::Transport> dial(const sdk::Request& request) override;

  // {"state": "running" | "unknown", "detail": ...}: "running" when the socket
  // accepts a connection. Never fails for an absent daemon.
  Result<std::string> status(const sdk::Request& request) override;

  // The daemon is not managed by envd: these fail with Errc::unsupported.
  Result<std::string> bootstrap(const sdk::Request& request) override;
  Status stop(const sdk::Request& request) override;
  Status remove(const sdk::Request& request) override;
};

}  // namespace envd::plugins
