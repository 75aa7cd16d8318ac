#include "envd/relay.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace envd::sdk {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The test's own end of a socketpair, closed at the end of the test.
class End {
 public:
  explicit End(int fd) : fd_(fd) {}
  End(End&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  End& operator=(End&&) = delete;
  End(const End&) = delete;
  End& operator=(const End&) = delete;
  ~End() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A connected pair: `ours` stays with the test, `theirs` goes to the relay.
struct Pair {
  std::optional<End> ours;
  int theirs = -1;
};

Pair socket_pair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  Pair pair;
  pair.ours.emplace(fds[0]);
  pair.theirs = fds[1];
  return pair;
}

bool send_text(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until `size` bytes arrived, end of input, or 5 s passed.
std::string receive(int fd, std::size_t size) {
  std::string text;
  const auto deadline = Clock::now() + 5s;
  while (text.size() < size && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, size - text.size()));
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

// True when `fd` reads end of input within 5 s (with nothing before it).
bool reads_eof(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return false;
  char byte = 0;
  return ::read(fd, &byte, 1) == 0;
}

bool eventually(const std::function<bool()>& condition) {
  const auto deadline = Clock::now() + 5s;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(Relay, CopiesBothDirections) {
  Pair caller = socket_pair();
  Pair engine = socket_pair();
  auto relay = Relay::between("test relay", engine.theirs, caller.theirs);
  ASSERT_TRUE(relay) << relay.error().message();

  ASSERT_TRUE(send_text(caller.ours->get(), "ping"));
  EXPECT_EQ(receive(engine.ours->get(), 4), "ping");
  ASSERT_TRUE(send_text(engine.ours->get(), "pong"));
  EXPECT_EQ(receive(caller.ours->get(), 4), "pong");
  // More than one read's worth, in order.
  std::string big(std::size_t{300} * 1024, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] { send_text(engine.ours->get(), big); });
  EXPECT_EQ(receive(caller.ours->get(), big.size()), big);
  writer.join();
  EXPECT_FALSE(relay->finished());
}

TEST(Relay, PassesAHalfCloseOnAndClosesItsEndsWhenBothDirectionsEnded) {
  Pair caller = socket_pair();
  Pair engine = socket_pair();
  auto relay = Relay::between("test relay", engine.theirs, caller.theirs);
  ASSERT_TRUE(relay) << relay.error().message();

  // The caller is done writing: the engine reads end of input, and can still answer.
  ASSERT_EQ(::shutdown(caller.ours->get(), SHUT_WR), 0);
  EXPECT_TRUE(reads_eof(engine.ours->get()));
  ASSERT_TRUE(send_text(engine.ours->get(), "late answer"));
  EXPECT_EQ(receive(caller.ours->get(), 11), "late answer");
  EXPECT_FALSE(relay->finished());

  ASSERT_EQ(::shutdown(engine.ours->get(), SHUT_WR), 0);
  EXPECT_TRUE(reads_eof(caller.ours->get()));
  EXPECT_TRUE(eventually([&] { return relay->finished(); }));
  // The relay's ends are closed: nothing reads what we send any more.
  EXPECT_FALSE(send_text(caller.ours->get(), "x"));
  EXPECT_EQ(errno, EPIPE);
  EXPECT_FALSE(send_text(engine.ours->get(), "x"));
}

TEST(Relay, JoinsItsThreadsWhenDestroyed) {
  Pair caller = socket_pair();
  Pair engine = socket_pair();
  std::atomic<int> ended{0};
  auto slow_end = [&] {
    std::this_thread::sleep_for(50ms);  // a thread still at work when the destructor starts
    ++ended;
  };
  {
    auto relay =
        Relay::between("test relay", engine.theirs, caller.theirs, {{}, slow_end}, {{}, slow_end});
    ASSERT_TRUE(relay) << relay.error().message();
    ASSERT_TRUE(send_text(caller.ours->get(), "x"));
    EXPECT_EQ(receive(engine.ours->get(), 1), "x");
  }  // both threads are blocked reading: the destructor stops and joins them
  EXPECT_EQ(ended.load(), 2);
  EXPECT_TRUE(reads_eof(caller.ours->get()));
  EXPECT_TRUE(reads_eof(engine.ours->get()));
}

TEST(Relay, StopWakesADirectionBlockedInAWrite) {
  Pair caller = socket_pair();
  Pair engine = socket_pair();
  auto relay = Relay::between("test relay", engine.theirs, caller.theirs);
  ASSERT_TRUE(relay) << relay.error().message();
  // Nobody reads the caller's end: the relay fills it and blocks in send().
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    std::string chunk(std::size_t{64} * 1024, 'z');
    while (send_text(engine.ours->get(), chunk)) {
    }
    writer_done = true;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(writer_done.load()) << "the relay should be blocked, and so the writer";

  auto started = Clock::now();
  relay->stop();
  relay->join();
  EXPECT_LT(Clock::now() - started, 2s);
  EXPECT_TRUE(relay->finished());
  writer.join();  // its socket's peer was shut down
  EXPECT_TRUE(writer_done.load());
}

TEST(Relay, AFilterDecidesWhatPassesAndWhenTheDirectionEnds) {
  Pair caller = socket_pair();
  Pair engine = socket_pair();
  std::atomic<bool> up_ended{false};
  RelayDirection up;
  up.filter = [](std::string_view data, const RelayForward& forward) {
    std::string upper(data);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (upper.find("STOP") != std::string::npos) return false;
    return forward(upper);
  };
  up.on_end = [&] { up_ended = true; };
  auto relay = Relay::between("test relay", caller.theirs, engine.theirs, std::move(up));
  ASSERT_TRUE(relay) << relay.error().message();

  ASSERT_TRUE(send_text(caller.ours->get(), "hello"));
  EXPECT_EQ(receive(engine.ours->get(), 5), "HELLO");
  ASSERT_TRUE(send_text(caller.ours->get(), "stop"));
  EXPECT_TRUE(reads_eof(engine.ours->get()));
  EXPECT_TRUE(up_ended.load()) << "on_end runs before the end is passed on";
  // The other direction goes on.
  ASSERT_TRUE(send_text(engine.ours->get(), "still here"));
  EXPECT_EQ(receive(caller.ours->get(), 10), "still here");
}

TEST(Relay, RunStopsItsJobThroughTheHookAndItsSockets) {
  Pair watched = socket_pair();
  std::mutex mutex;
  std::condition_variable wake;
  bool stop_asked = false;
  std::atomic<bool> read_ended{false};
  std::atomic<bool> job_ended{false};
  const int fd = watched.theirs;
  auto relay = Relay::run(
      "test job",
      [&, fd] {
        char byte = 0;
        while (::read(fd, &byte, 1) > 0) {
        }
        read_ended = true;
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stop_asked; });
        job_ended = true;
      },
      [&] {
        std::lock_guard lock(mutex);
        stop_asked = true;
        wake.notify_all();
      },
      {fd});
  ASSERT_TRUE(relay) << relay.error().message();
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(read_ended.load());

  relay->stop();
  relay->join();
  EXPECT_TRUE(read_ended.load()) << "stop() shuts down the relay's sockets";
  EXPECT_TRUE(job_ended.load()) << "stop() calls the hook";
  EXPECT_TRUE(relay->finished());
  EXPECT_FALSE(send_text(watched.ours->get(), "x")) << "its socket is closed once the job ended";
}

TEST(Relay, TheStopHookIsNotCalledOnceTheJobReturned) {
  std::atomic<int> stops{0};
  auto relay = Relay::run(
      "test job", [] {}, [&] { ++stops; });
  ASSERT_TRUE(relay) << relay.error().message();
  EXPECT_TRUE(eventually([&] { return relay->finished(); }));
  relay->stop();
  relay->stop();
  EXPECT_EQ(stops.load(), 0);
}

TEST(Relay, AMovedRelayKeepsItsThreads) {
  Pair caller = socket_pair();
  Pair engine = socket_pair();
  auto started = Relay::between("test relay", engine.theirs, caller.theirs);
  ASSERT_TRUE(started) << started.error().message();
  Relay relay = std::move(*started);
  ASSERT_TRUE(send_text(caller.ours->get(), "moved"));
  EXPECT_EQ(receive(engine.ours->get(), 5), "moved");
  Relay other = std::move(relay);
  EXPECT_FALSE(other.finished());
  ASSERT_TRUE(send_text(engine.ours->get(), "again"));
  EXPECT_EQ(receive(caller.ours->get(), 5), "again");
}

TEST(RelayRegistry, ReapsFinishedRelaysAndStopsTheRestWhenDestroyed) {
  Pair blocked = socket_pair();
  std::atomic<bool> blocked_ended{false};
  {
    RelayRegistry registry;
    auto quick = Relay::run("quick job", [] {});
    ASSERT_TRUE(quick) << quick.error().message();
    registry.adopt(std::move(*quick));
    const int fd = blocked.theirs;
    auto slow = Relay::run("blocked job",
                           [&, fd] {
                             char byte = 0;
                             while (::read(fd, &byte, 1) > 0) {
                             }
                             blocked_ended = true;
                           },
                           {}, {fd});
    ASSERT_TRUE(slow) << slow.error().message();
    registry.adopt(std::move(*slow));
    EXPECT_TRUE(eventually([&] { return registry.reap() == 1; }));
    EXPECT_FALSE(blocked_ended.load());
  }
  EXPECT_TRUE(blocked_ended.load());
  EXPECT_TRUE(reads_eof(blocked.ours->get()));
}

TEST(RelayRegistry, StopAllStopsAndJoinsEveryRelay) {
  RelayRegistry registry;
  std::atomic<int> ended{0};
  std::vector<Pair> pairs;
  for (int i = 0; i < 3; ++i) {
    pairs.push_back(socket_pair());
    const int fd = pairs.back().theirs;
    auto relay = Relay::run("blocked job",
                            [&, fd] {
                              char byte = 0;
                              while (::read(fd, &byte, 1) > 0) {
                              }
                              ++ended;
                            },
                            {}, {fd});
    ASSERT_TRUE(relay) << relay.error().message();
    registry.adopt(std::move(*relay));
  }
  EXPECT_EQ(registry.reap(), 3U);
  registry.stop_all();
  EXPECT_EQ(ended.load(), 3);
  EXPECT_EQ(registry.reap(), 0U);
}

}  // namespace
}  // namespace envd::sdk
