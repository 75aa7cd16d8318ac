// Test-only: a real gRPC server on a unix socket serving attachables, and a
// channel to it, so tests can play the daemon.
#pragma once

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "buildkit/attachable.hpp"

namespace envd::buildkit::testing {

class LoopbackServer {
 public:
  LoopbackServer(const std::filesystem::path& dir, const std::vector<Attachable*>& attachables) {
    std::string address = "unix:" + (dir / "session.sock").string();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    for (auto* attachable : attachables) attachable->register_on(builder);
    server_ = builder.BuildAndStart();
    channel_ = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }
  ~LoopbackServer() {
    if (server_) server_->Shutdown();
  }

  bool started() const { return server_ != nullptr; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace envd::buildkit::testing
