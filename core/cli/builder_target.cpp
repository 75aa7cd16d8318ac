#include "cli/builder_target.hpp"

#include <cstdlib>
#include <utility>

#include "context/resolve.hpp"
#include "context/stored_files.hpp"
#include "util/duration.hpp"

namespace envd::cli {

Result<std::chrono::milliseconds> connect_timeout(const std::string& flag) {
  if (!flag.empty()) return util::parse_duration(flag, "--connect-timeout");
  if (const char* env = std::getenv("BUILDKIT_CONNECTING_TIMEOUT"); env && env[0] != '\0') {
    return util::parse_duration(env, "BUILDKIT_CONNECTING_TIMEOUT");
  }
  return kDefaultConnectTimeout;
}

Result<BuilderTarget> resolve_builder(Session& session) {
  auto store = session.store();
  if (!store) return store.error();
  auto list = store->load();
  if (!list) return list.error();
  auto resolved = context::resolve_context(*list, session.context_flag);
  if (!resolved) return resolved.error();
  auto driver = session.registry().builder(resolved->context.builder);
  if (!driver) return driver.error();
  return BuilderTarget{resolved->context, std::move(*store), *driver};
}

plugin::DriverRequest driver_request(const BuilderTarget& target, std::chrono::milliseconds timeout,
                                     std::string args_json) {
  plugin::DriverRequest request;
  request.context = target.context.name;
  request.address = target.context.builder_address;
  request.options = context::resolve_stored_files(
      target.store, target.context, target.context.builder_options, target.driver.file_options());
  request.data_dir = target.store.data_dir(target.context).string();
  request.timeout = timeout;
  request.args_json = std::move(args_json);
  return request;
}

Result<buildkit::Client> connect_builder(const BuilderTarget& target,
                                         std::chrono::milliseconds timeout, std::string args_json) {
  auto transport = target.driver.dial(driver_request(target, timeout, std::move(args_json)));
  if (!transport) {
    return Error(transport.error().code(), "cannot connect to buildkitd at " +
                                               target.context.builder_endpoint() + ": " +
                                               transport.error().message());
  }
  return buildkit::Client::connect(std::move(*transport), timeout);
}

SignalWatcher::SignalWatcher(buildkit::CancelToken token) : token_(std::move(token)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, &old_);
  thread_ = std::thread([this] {
    timespec tick{0, 100'000'000};
    while (!stop_) {
      if (sigtimedwait(&set_, nullptr, &tick) > 0) token_.cancel();
    }
  });
}

SignalWatcher::~SignalWatcher() {
  stop_ = true;
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace envd::cli
