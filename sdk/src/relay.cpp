#include "envd/relay.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace envd::sdk {
namespace {

constexpr std::size_t kCopyBuffer = std::size_t{64} * 1024;

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// One direction of Relay::between.
void copy(int from, int to, const RelayDirection& hooks) {
  const RelayForward forward = [to](std::string_view data) { return send_all(to, data); };
  std::vector<char> buffer(kCopyBuffer);
  for (;;) {
    ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::string_view data(buffer.data(), static_cast<std::size_t>(n));
    if (!(hooks.filter ? hooks.filter(data, forward) : forward(data))) break;
  }
  if (hooks.on_end) hooks.on_end();
  ::shutdown(to, SHUT_WR);
}

}  // namespace

// Shared by the Relay and its threads, so that a thread never outlives what it
// uses even in the one case where it is not joined (a relay destroyed by one
// of its own threads).
struct Relay::State {
  std::vector<std::function<void()>> jobs;  // fixed before the threads start
  std::function<void()> on_stop;
  std::vector<int> fds;
  std::vector<std::thread> threads;  // touched only by start() and join()
  std::mutex join_mutex;             // one joiner at a time

  mutable std::mutex mutex;
  std::size_t running = 0;  // guarded by mutex: jobs that have not returned
  bool stopped = false;     // guarded by mutex
  bool closed = false;      // guarded by mutex: fds are closed

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() { close_fds(); }  // no thread runs any more

  void close_fds() {
    if (closed) return;
    closed = true;
    for (int fd : fds) ::close(fd);
  }

  void job_done() {
    std::lock_guard lock(mutex);
    if (--running == 0) close_fds();
  }

  // Closing and shutting down happen under one mutex, so a shutdown never
  // reaches a descriptor number that was closed and reused.
  void stop() {
    std::lock_guard lock(mutex);
    if (stopped) return;
    stopped = true;
    if (running == 0) return;
    if (on_stop) on_stop();
    for (int fd : fds) ::shutdown(fd, SHUT_RDWR);
  }

  bool finished() const {
    std::lock_guard lock(mutex);
    return running == 0;
  }

  void join() {
    std::lock_guard lock(join_mutex);
    for (auto& thread : threads) {
      if (!thread.joinable()) continue;
      if (thread.get_id() == std::this_thread::get_id()) {
        thread.detach();  // destroyed from its own thread; it holds the state alive
      } else {
        thread.join();
      }
    }
  }
};

Relay::Relay(std::shared_ptr<State> state) : state_(std::move(state)) {}

Relay::Relay(Relay&&) noexcept = default;

Relay& Relay::operator=(Relay&& other) noexcept {
  if (this != &other) {
    Relay old(std::move(*this));
    state_ = std::move(other.state_);
  }
  return *this;
}

Relay::~Relay() {
  if (!state_) return;
  state_->stop();
  state_->join();
}

Result<Relay> Relay::start(std::string_view name, std::shared_ptr<State> state) {
  const std::size_t count = state->jobs.size();
  state->running = count;
  state->threads.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    try {
      state->threads.emplace_back([state, i] {
        state->jobs[i]();
        state->job_done();
      });
    } catch (const std::system_error& e) {
      {
        std::lock_guard lock(state->mutex);
        state->running -= count - i;
        if (state->running == 0) state->close_fds();
      }
      Relay started(std::move(state));  // stops and joins what did start
      return Error(Errc::internal,
                   "cannot start the " + std::string(name) + " thread: " + e.what());
    }
  }
  return Relay(std::move(state));
}

Result<Relay> Relay::between(std::string_view name, int a, int b, RelayDirection a_to_b,
                             RelayDirection b_to_a) {
  auto state = std::make_shared<State>();
  state->fds = {a, b};
  state->jobs.emplace_back([a, b, hooks = std::move(a_to_b)] { copy(a, b, hooks); });
  state->jobs.emplace_back([a, b, hooks = std::move(b_to_a)] { copy(b, a, hooks); });
  return start(name, std::move(state));
}

Result<Relay> Relay::run(std::string_view name, std::function<void()> job,
                         std::function<void()> on_stop, std::vector<int> fds) {
  auto state = std::make_shared<State>();
  state->fds = std::move(fds);
  state->on_stop = std::move(on_stop);
  state->jobs.push_back(std::move(job));
  return start(name, std::move(state));
}

void Relay::stop() {
  if (state_) state_->stop();
}

bool Relay::finished() const { return !state_ || state_->finished(); }

void Relay::join() {
  if (state_) state_->join();
}

RelayRegistry::~RelayRegistry() { stop_all(); }

void RelayRegistry::adopt(Relay relay) {
  reap();
  std::lock_guard lock(mutex_);
  relays_.push_back(std::move(relay));
}

std::size_t RelayRegistry::reap() {
  std::vector<Relay> done;  // joined outside the lock, when it goes out of scope
  std::lock_guard lock(mutex_);
  for (auto it = relays_.begin(); it != relays_.end();) {
    if (it->finished()) {
      done.push_back(std::move(*it));
      it = relays_.erase(it);
    } else {
      ++it;
    }
  }
  return relays_.size();
}

void RelayRegistry::stop_all() {
  std::vector<Relay> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(relays_);
  }
  for (auto& relay : all) relay.stop();  // all at once, then each is joined
}

RelayRegistry& relay_registry() {
  static RelayRegistry registry;
  return registry;
}

}  // namespace envd::sdk
