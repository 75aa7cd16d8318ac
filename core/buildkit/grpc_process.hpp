// gRPC's process-wide setup: its start, early and on a thread of its own
// (GrpcWarmUp), and the filter on its log (install_grpc_log_filter).
//
// gRPC's start (grpc_init: its timer and executor threads, the event engine,
// the registry of resolvers and load balancers) costs a build 1 to 2 ms
// before its channel exists. GrpcWarmUp does it on a thread of its own while
// the command still reads its context and loads the driver module, so the
// channel finds gRPC ready.
//
//   buildkit::GrpcWarmUp grpc_ready;  // before resolving the builder
//   auto client = buildkit::Client::connect(...);
//
// Internal to the core; one per command, from one thread.
#pragma once

#include <thread>

namespace envd::buildkit {

class GrpcWarmUp {
 public:
  // Starts grpc_init() on a new thread. That thread blocks SIGINT and SIGTERM
  // first, so the threads gRPC starts from it inherit them blocked, as a
  // command's SignalWatcher needs (its signals reach the watcher only).
  GrpcWarmUp();
  GrpcWarmUp(const GrpcWarmUp&) = delete;
  GrpcWarmUp& operator=(const GrpcWarmUp&) = delete;
  // Joins the thread and gives up the reference grpc_init() took: gRPC shuts
  // down here if nothing else holds it, so destroy it after every channel.
  ~GrpcWarmUp();

 private:
  std::thread thread_;
};

// gRPC logs connection failures to stderr, which would break envd's one-line
// errors; envd reports them itself. Silences that log for the process, once,
// unless GRPC_VERBOSITY or GRPC_TRACE ask for it (debugging). Every client
// calls it before its first gRPC call.
void install_grpc_log_filter();

}  // namespace envd::buildkit
