// A service the client's session server offers the daemon (FileSync, FileSend,
// Auth, ...). The session (session.hpp) registers every attachable on its gRPC
// server and advertises the methods each one serves.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

namespace envd::buildkit {

class Attachable {
 public:
  virtual ~Attachable() = default;

  // Registers this attachable's service(s) on the session's server builder.
  // Called once, before the server starts; the attachable outlives the server.
  virtual void register_on(grpc::ServerBuilder& builder) = 0;

  // Full gRPC method paths served, e.g. "/moby.filesync.v1.FileSync/DiffCopy",
  // sent to the daemon as x-docker-expose-session-grpc-method values.
  virtual std::vector<std::string> methods() const = 0;
};

}  // namespace envd::buildkit
