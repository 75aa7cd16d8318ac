#include "buildkit/grpc_process.hpp"

#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <signal.h>

#include <cstdlib>
#include <mutex>

namespace envd::buildkit {

namespace {

void quiet_grpc_log(gpr_log_func_args* /*args*/) {}

}  // namespace

void install_grpc_log_filter() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("GRPC_VERBOSITY") != nullptr || std::getenv("GRPC_TRACE") != nullptr) return;
    gpr_set_log_function(&quiet_grpc_log);
  });
}

GrpcWarmUp::GrpcWarmUp()
    : thread_([] {
        sigset_t blocked;
        sigemptyset(&blocked);
        // The signals cli::SignalWatcher collects: gRPC's threads, made
        // from this one, must never take one (its default would end envd).
        sigaddset(&blocked, SIGINT);
        sigaddset(&blocked, SIGTERM);
        sigaddset(&blocked, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
        // Before gRPC's first line, so start-up messages are filtered too.
        install_grpc_log_filter();
        grpc_init();
      }) {}

GrpcWarmUp::~GrpcWarmUp() {
  thread_.join();
  grpc_shutdown();
}

}  // namespace envd::buildkit
