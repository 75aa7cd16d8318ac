// SshForward: the session service behind `RUN --mount=type=ssh`
// (/moby.sshforward.v1.SSH/CheckAgent and /ForwardAgent), which lets a build
// step use the user's ssh-agent without the keys leaving it.
//
// Each forwarded agent is an id (the mount's `id`, "default" when none) and the
// unix socket of a running ssh-agent. CheckAgent, which the daemon calls before
// the step, answers NOT_FOUND for an id that was not forwarded and UNAVAILABLE
// when the socket does not accept a connection. ForwardAgent, one stream per
// connection the step makes to its mounted socket, names the id in the request
// metadata key "buildkit.ssh.id" and carries the agent protocol both ways over a
// fresh connection to the agent's socket, closed when the stream ends.
//
// Read-only, as BuildKit's own provider is: requests are taken one at a time
// and only "list identities" and "sign" reach the agent; every other request
// (adding, removing or locking keys, extensions) is answered SSH_AGENT_FAILURE
// here. A request or an answer longer than 256 KiB, OpenSSH's own limit, ends
// the stream with an error. A call blocked on the agent gives up when the
// daemon cancels it (e.g. when the session closes).
//
// Keys in files are not loaded: the CLI accepts agent sockets only.
//
// Threads: none of its own; each call runs on the session server's thread.
// The agent map is immutable once constructed, so calls may run concurrently.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "buildkit/attachable.hpp"
#include "envd/result.hpp"

namespace envd::buildkit {

// Forwarded agent id -> path of the ssh-agent's unix socket.
using SshAgents = std::map<std::string, std::filesystem::path, std::less<>>;

// Connects to the unix socket at `socket` and closes the connection again.
// Errc::unavailable "cannot connect to ssh agent socket '<path>': <why>", or
// Errc::invalid_argument when the path cannot be a unix socket address.
Status check_agent_socket(const std::filesystem::path& socket);

class SshForwardProvider : public Attachable {
 public:
  explicit SshForwardProvider(SshAgents agents);
  ~SshForwardProvider() override;
  SshForwardProvider(const SshForwardProvider&) = delete;
  SshForwardProvider& operator=(const SshForwardProvider&) = delete;

  void register_on(grpc::ServerBuilder& builder) override;
  // {"/moby.sshforward.v1.SSH/CheckAgent", "/moby.sshforward.v1.SSH/ForwardAgent"}
  std::vector<std::string> methods() const override;

 private:
  class Service;
  SshAgents agents_;
  std::unique_ptr<Service> service_;
};

}  // namespace envd::buildkit
