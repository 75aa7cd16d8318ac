#include "cli/builder_target.hpp"

#include <poll.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "cli/signal_watcher.hpp"
#include "context/resolve.hpp"
#include "context/stored_files.hpp"
#include "util/duration.hpp"
#include "util/message_out.hpp"
#include "util/terminal.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

// `args_json` with "image" set to `image` unless empty or already given.
std::string with_image(std::string args_json, const std::string& image) {
  if (image.empty()) return args_json;
  boost::system::error_code ec;
  boost::json::value args = boost::json::parse(args_json, ec);
  if (ec || !args.is_object()) return args_json;  // the driver layer reports it
  if (!args.as_object().contains("image")) args.as_object()["image"] = image;
  return boost::json::serialize(args);
}

// What the driver says about its daemon after BuildKit did not answer: the
// state when not running and the daemon's last log lines, or "".
std::string driver_diagnosis(const BuilderTarget& target, std::chrono::milliseconds budget) {
  auto status = target.driver.status(driver_request(target, budget));
  if (!status) return {};
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(*status, ec);
  if (ec || !v.is_object()) return {};
  const auto& o = v.as_object();
  std::string out;
  const auto* state = o.if_contains("state");
  const auto* detail = o.if_contains("detail");
  if (state != nullptr && state->is_string() && state->as_string() != "running" &&
      detail != nullptr && detail->is_string()) {
    out += " (" + std::string(detail->as_string()) + ")";
  }
  if (const auto* dial = o.if_contains("dial_error"); dial != nullptr && dial->is_string()) {
    out += "; " + std::string(dial->as_string());
  }
  if (const auto* logs = o.if_contains("logs");
      logs != nullptr && logs->is_array() && !logs->as_array().empty()) {
    out += "; the builder's last log lines:";
    for (const auto& line : logs->as_array()) {
      if (line.is_string()) out += "\n  " + std::string(line.as_string());
    }
  }
  return out;
}

// On a terminal, asks whether to replace a builder daemon that no longer
// matches the context (the driver refused it with Errc::already_exists).
bool confirm_recreate(const Error& error) {
  if (error.code() != Errc::already_exists || !util::is_terminal(STDIN_FILENO) ||
      !util::is_terminal(STDERR_FILENO)) {
    return false;
  }
  util::write_message(stderr, fmt::format("{}\nRecreate it now? [y/N] ", error.message()));
  std::fflush(stderr);
  // Read as the answer comes, checking for Ctrl-C between polls: the
  // signals are taken by the SignalWatcher's thread, so a blocking read was
  // never interrupted and Ctrl-C waited for the 10 s watchdog.
  std::string answer;
  for (;;) {
    if (SignalWatcher::received() != 0) {
      util::write_message(stderr, "\n");
      return false;
    }
    pollfd ready{STDIN_FILENO, POLLIN, 0};
    int n = ::poll(&ready, 1, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) continue;
    char c = 0;
    if (::read(STDIN_FILENO, &c, 1) != 1 || c == '\n') break;
    answer += c;
  }
  return answer == "y" || answer == "Y" || answer == "yes";
}

constexpr std::chrono::milliseconds kWaitNoticeAfter{3000};

std::string seconds_text(std::chrono::milliseconds duration) {
  auto ms = duration.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

// Calls `say` once, on a thread of its own, if it is still alive `after` from
// now; nothing when `deadline` comes first anyway (a short connect timeout).
class WaitNotice {
 public:
  WaitNotice(std::chrono::milliseconds after, std::chrono::milliseconds deadline,
             std::function<void()> say) {
    if (deadline <= after) return;
    thread_ = std::thread([this, after, say = std::move(say)] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, after, [this] { return done_; })) say();
    });
  }
  WaitNotice(const WaitNotice&) = delete;
  WaitNotice& operator=(const WaitNotice&) = delete;
  ~WaitNotice() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

Result<std::chrono::milliseconds> connect_timeout(const std::string& flag) {
  // The flag was checked as the command line was read (positive_duration);
  // the variable is checked here, by the same rule.
  auto checked = [](const std::string& text,
                    const char* what) -> Result<std::chrono::milliseconds> {
    auto parsed = util::parse_duration(text, what);
    if (!parsed) return parsed.error();
    if (parsed->count() <= 0) {
      return Error(Errc::invalid_argument, std::string("invalid ") + what + " '" +
                                               util::printable(text, 40) +
                                               "': it must be 1ms or more");
    }
    return *parsed;
  };
  if (!flag.empty()) return checked(flag, "--connect-timeout");
  if (const char* env = std::getenv("BUILDKIT_CONNECTING_TIMEOUT"); env && env[0] != '\0') {
    return checked(env, "BUILDKIT_CONNECTING_TIMEOUT");
  }
  return kDefaultConnectTimeout;
}

Result<BuilderTarget> resolve_builder(Invocation& invocation) {
  auto current = invocation.current_context();
  if (!current) return current.error();
  auto driver = invocation.registry().builder(current->context.builder);
  if (!driver) return driver.error();
  // --buildkitd-image is for a builder made from an image: one whose driver
  // takes an "image" option. Asking its (pure) option check says so for any
  // module, ours or not, and checks the value; a tcp builder would otherwise
  // ignore the flag without a word.
  if (!invocation.buildkitd_image.empty()) {
    auto taken = driver->normalize_options({{"image", invocation.buildkitd_image}});
    if (!taken) {
      return Error(Errc::invalid_argument, "--buildkitd-image cannot be used with context '" +
                                               current->context.name +
                                               "': " + taken.error().message());
    }
  }
  invocation.host.set_quiet(invocation.quiet_progress);
  plugin::Host* host = &invocation.host;
  BuilderTarget target{std::move(current->context),
                       std::move(current->store),
                       *driver,
                       invocation.buildkitd_image,
                       buildkit::CancelToken(),
                       nullptr,
                       host};
  target.signals = std::make_shared<SignalWatcher>([host, token = target.cancel]() mutable {
    host->cancel();
    token.cancel();
  });
  return target;
}

plugin::DriverRequest driver_request(const BuilderTarget& target, std::chrono::milliseconds timeout,
                                     std::string args_json) {
  plugin::DriverRequest request;
  request.context = target.context.name;
  request.address = target.context.builder_address;
  request.options = context::resolve_stored_files(
      target.store, target.context, target.context.builder_options, target.driver.file_options());
  request.data_dir = target.store.driver_data_dir(target.context).string();
  request.timeout = timeout;
  request.args_json = with_image(std::move(args_json), target.buildkitd_image);
  return request;
}

std::shared_ptr<void> connect_wait_notice(const BuilderTarget& target,
                                          std::chrono::milliseconds timeout,
                                          std::function<bool()> still_waiting) {
  return std::make_shared<WaitNotice>(
      kWaitNoticeAfter, timeout,
      [host = target.host, endpoint = target.context.builder_endpoint(), timeout,
       still_waiting = std::move(still_waiting)] {
        if (host == nullptr || !still_waiting()) return;
        host->report("Waiting for buildkitd at " + endpoint + " (at most " + seconds_text(timeout) +
                     ", --connect-timeout)");
      });
}

Error connect_failure(const BuilderTarget& target, const Error& failure,
                      std::chrono::milliseconds timeout) {
  // Ctrl-C says nothing about the builder: its logs would read as a fault.
  if (failure.code() == Errc::cancelled) return failure;
  // The diagnosis comes after the deadline the user gave, so it gets a
  // quarter of it (250 ms to 5 s): a driver asking a silent API server
  // (kube-pod's kubectl) would otherwise double or treble the wait.
  std::string diagnosis = driver_diagnosis(
      target, std::clamp<std::chrono::milliseconds>(timeout / 4, std::chrono::milliseconds(250),
                                                    std::chrono::seconds(5)));
  if (diagnosis.empty()) return failure;
  return Error(failure.code(), failure.message() + diagnosis);
}

Result<buildkit::Client> connect_builder(const BuilderTarget& target,
                                         std::chrono::milliseconds timeout, std::string args_json,
                                         buildkit::Client::Probe probe,
                                         std::vector<buildkit::Worker> expected) {
  auto transport = target.driver.dial(driver_request(target, timeout, args_json));
  const bool recreate = !transport && confirm_recreate(transport.error());
  if (!transport && SignalWatcher::received() != 0) {
    // Only a builder that no longer matches its context was offered to be
    // recreated (confirm_recreate); any other dial was just cut short.
    if (transport.error().code() == Errc::already_exists) {
      return Error(Errc::cancelled, "recreating the builder cancelled; it is left as it was");
    }
    return Error(Errc::cancelled,
                 "cancelled while connecting to buildkitd at " + target.context.builder_endpoint());
  }
  if (recreate) {
    auto recreated =
        target.driver.bootstrap(driver_request(target, timeout, R"({"recreate":true})"));
    if (!recreated) return recreated.error();
    transport = target.driver.dial(driver_request(target, timeout, std::move(args_json)));
  }
  if (!transport) {
    return Error(transport.error().code(), "cannot connect to buildkitd at " +
                                               target.context.builder_endpoint() + ": " +
                                               transport.error().message());
  }
  // A long --connect-timeout must not look like a hang: once the daemon has
  // kept the command waiting a few seconds, say what for and for how long.
  // Only around the client's connect, whose deadline is exactly `timeout`:
  // a driver's dial (a bootstrap that pulls an image, a prompt to recreate)
  // reports its own progress and may take longer.
  auto client = [&] {
    auto notice = connect_wait_notice(target, timeout, [] { return true; });
    return buildkit::Client::connect(std::move(*transport), timeout, &target.cancel, probe,
                                     std::move(expected));
  }();
  if (!client) return connect_failure(target, client.error(), timeout);
  if (target.driver.has_dial_session()) {
    client->set_session_dialer(
        [driver = target.driver, request = driver_request(target, timeout)](
            const plugin::SessionSpec& session) { return driver.dial_session(request, session); });
  }
  return client;
}

}  // namespace envd::cli
