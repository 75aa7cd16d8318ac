#include "container_io.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

#include "envd/address.hpp"
#include "envd/host.hpp"
#include "envd/stdio_frames.hpp"
#include "envd/text.hpp"

namespace envd::plugins::docker_runner {
namespace {

namespace json = boost::json;

// Tries a resize this often until the exec's process exists (the Engine
// refuses to resize an exec that has not started yet).
constexpr int kResizeAttempts = 20;

// Writes all of `data` to `fd` (blocking); 0, or the errno of the write
// that failed (EPIPE: the reader is gone).
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 100);
        continue;
      }
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// Delivers a raw (TTY) or multiplexed stream to stdout / stderr.
class OutputSink {
 public:
  OutputSink(const sdk::Stdio& stdio, bool tty)
      : stdio_(stdio), tty_(tty), demuxer_([this](int stream, std::string_view piece) {
          note(write_all(stream == 2 ? stdio_.err_fd : stdio_.out_fd, piece));
        }) {}

  // False once a write failed: stop reading then.
  bool feed(std::string_view data) {
    if (tty_) {
      note(write_all(stdio_.out_fd, data));
    } else {
      demuxer_.feed(data);
    }
    return error_ == 0;
  }

  // Why the output stopped: "" when it did not, or when its reader went
  // away (`envd envs logs -f | head` ends quietly, as docker logs does; a
  // socket's reader resets it);
  // else what failed (a full disk), which the command must not call success.
  std::string failure() const {
    if (error_ == 0 || error_ == EPIPE || error_ == ECONNRESET) return {};
    return std::strerror(error_);
  }

 private:
  void note(int error) {
    if (error_ == 0) error_ = error;
  }

  const sdk::Stdio& stdio_;
  bool tty_;
  int error_ = 0;
  sdk::FrameDemuxer demuxer_;
};

std::string logs_path(const std::string& id, const LogsOptions& options) {
  sdk::QueryParams query{{"stdout", "1"}, {"stderr", "1"}};
  if (options.follow) query.emplace_back("follow", "1");
  query.emplace_back("tail", options.tail ? std::to_string(*options.tail) : "all");
  return "/containers/" + id + "/logs?" + sdk::format_query(query);
}

// The exec's state: {running, exit code}.
// What GET /exec/{id}/json says: whether it runs (true from the start call,
// before the process exists), its exit code (-1 while it has none) and its
// process id (0 until the process started; it stays 0 for an exec the
// runtime could not start; -1 when the Engine does not say).
struct ExecState {
  bool running = false;
  int exit_code = -1;
  std::int64_t pid = 0;
};

Result<ExecState> exec_state(sdk::DockerEngine& engine, const std::string& exec_id,
                             sdk::Deadline deadline) {
  auto body = engine.call("GET", "/exec/" + exec_id + "/json", "", deadline);
  if (!body) return body.error();
  boost::system::error_code ec;
  json::value v = json::parse(*body, ec);
  if (ec || !v.is_object()) return Error(Errc::internal, "the Engine's exec inspect is not JSON");
  const auto& o = v.as_object();
  ExecState state;
  state.running = o.contains("Running") && o.at("Running").is_bool() && o.at("Running").as_bool();
  if (o.contains("ExitCode") && o.at("ExitCode").is_int64()) {
    state.exit_code = static_cast<int>(o.at("ExitCode").as_int64());
  }
  // An Engine that gives no Pid cannot tell a started exec: taken as one.
  state.pid = o.contains("Pid") && o.at("Pid").is_int64() ? o.at("Pid").as_int64() : -1;
  return state;
}

// Waits until the exec's process runs or has run, before any of its output
// is passed on. An exec the runtime could not start (no such program, not
// executable) has no process and an exit code: the Engine then writes its
// reason on the stream as if it were the program's output, and that is read
// here and returned as the error, so that it reaches stderr, not stdout.
Status check_started(sdk::DockerEngine& engine, const std::string& exec_id, int sock, bool tty,
                     const std::string& program, sdk::Deadline deadline) {
  for (;;) {
    auto state = exec_state(engine, exec_id, deadline);
    if (!state) return state.error().wrap("cannot start '" + program + "'");
    // The Engine says running from the moment it asks the runtime, before
    // the process exists; the process id says it started.
    if (state->pid != 0) return {};
    if (!state->running && state->exit_code >= 0) break;
    if (!sdk::sleep_unless_cancelled(std::chrono::milliseconds(5))) {
      return sdk::cancelled_error("starting '" + program + "'");
    }
  }
  // The Engine closes the stream once it has written why.
  std::string text;
  sdk::FrameDemuxer demuxer([&](int /*stream*/, std::string_view piece) { text.append(piece); });
  std::array<char, 4096> buffer{};
  const auto until = std::min(deadline, sdk::deadline_after(std::chrono::seconds(1)));
  while (text.size() < 4096) {
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    pollfd fd{sock, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&fd, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::read(sock, buffer.data(), buffer.size());
    if (n <= 0) break;
    std::string_view piece(buffer.data(), static_cast<std::size_t>(n));
    if (tty) {
      text.append(piece);
    } else {
      demuxer.feed(piece);
    }
  }
  text = sdk::one_line(text);
  return Error(Errc::invalid_argument,
               "cannot start '" + program + "'" + (text.empty() ? "" : ": " + text));
}

// The exit code once the exec has ended; the Engine records it a moment after
// the stream closes.
Result<int> wait_exit_code(sdk::DockerEngine& engine, const std::string& exec_id) {
  auto deadline = sdk::deadline_after(std::chrono::seconds(10));
  for (;;) {
    auto state = exec_state(engine, exec_id, deadline);
    if (!state) return state.error();
    if (!state->running) return state->exit_code;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error(Errc::timeout,
                   "the shell's stream ended but the Engine still reports it running");
    }
    if (!sdk::sleep_unless_cancelled(std::chrono::milliseconds(20))) {
      return sdk::cancelled_error("waiting for the shell's exit code");
    }
  }
}

}  // namespace

Status stream_logs(sdk::DockerEngine& engine, const std::string& id, const LogsOptions& options,
                   const sdk::Stdio& stdio, sdk::Deadline deadline) {
  OutputSink sink(stdio, options.tty);
  bool reader_gone = false;
  bool any_data = false;
  auto streamed = engine.stream(
      "GET", logs_path(id, options), "", {}, sdk::StreamMode::chunks,
      [&](std::string_view data) {
        any_data = true;
        if (sink.feed(data)) return true;
        reader_gone = true;
        return false;
      },
      deadline);
  if (reader_gone) {
    if (auto why = sink.failure(); !why.empty()) {
      return Error(Errc::unavailable, "cannot write the logs: " + why);
    }
    return {};  // the reader went away
  }
  if (!streamed) {
    if (streamed.error().code() == Errc::cancelled) return sdk::cancelled_error("showing logs");
    // The Engine answered and the logs flowed until the user's --timeout:
    // not an Engine that "did not answer".
    if (streamed.error().code() == Errc::timeout && options.follow && any_data) {
      return Error(Errc::timeout,
                   "stopped following the logs when --timeout ended (the environment was still "
                   "running)");
    }
    return streamed.error();
  }
  return {};
}

Result<int> attach_shell(sdk::DockerEngine& engine, const std::string& id,
                         const std::vector<std::string>& shell, const sdk::Stdio& stdio,
                         sdk::Deadline deadline) {
  const bool tty = stdio.is_terminal;
  json::array cmd;
  for (const auto& word : shell) cmd.emplace_back(word);
  json::object exec{{"AttachStdin", stdio.in_fd >= 0},
                    {"AttachStdout", true},
                    {"AttachStderr", true},
                    {"Tty", tty},
                    {"Cmd", std::move(cmd)}};
  if (tty) {
    // The user's terminal type, as ssh passes it on; xterm when unset.
    const char* term = std::getenv("TERM");  // NOLINT(concurrency-mt-unsafe): read only
    exec["Env"] =
        json::array{"TERM=" + std::string(term != nullptr && *term != '\0' ? term : "xterm")};
  }
  auto created =
      engine.call("POST", "/containers/" + id + "/exec", json::serialize(exec), deadline);
  if (!created) return created.error().wrap("cannot start a shell");
  boost::system::error_code ec;
  json::value answer = json::parse(*created, ec);
  if (ec || !answer.is_object() || !answer.as_object().contains("Id") ||
      !answer.as_object().at("Id").is_string()) {
    return Error(Errc::internal, "the Engine's answer to exec create has no Id");
  }
  std::string exec_id(answer.as_object().at("Id").as_string());

  auto hijacked = engine.hijack("POST", "/exec/" + exec_id + "/start",
                                json::serialize(json::object{{"Detach", false}, {"Tty", tty}}), {},
                                "tcp", deadline);
  if (!hijacked) return hijacked.error().wrap("cannot start a shell");
  int sock = *hijacked;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{sock};

  if (auto started = check_started(engine, exec_id, sock, tty, shell.front(), deadline); !started) {
    return started.error();
  }
  stdio.make_raw();
  OutputSink sink(stdio, tty);
  std::uint32_t seen_generation = 0;
  int resize_attempts = tty ? kResizeAttempts : 0;
  bool input_open = stdio.in_fd >= 0;
  std::array<char, std::size_t{32} * 1024> buffer{};
  for (;;) {
    // The Engine has no call that ends an exec: closing the session ends its
    // input, not what it runs, as with docker exec.
    if (sdk::cancelled()) {
      return Error(Errc::cancelled,
                   "the shell session cancelled; what it started may go on running in the "
                   "environment");
    }
    if (tty) {
      std::uint16_t rows = 0;
      std::uint16_t columns = 0;
      std::uint32_t generation = stdio.window_size(rows, columns);
      if (generation != seen_generation) resize_attempts = kResizeAttempts;
      if (resize_attempts > 0 && rows > 0 && columns > 0) {
        auto resized = engine.call(
            "POST",
            "/exec/" + exec_id + "/resize?" +
                sdk::format_query({{"h", std::to_string(rows)}, {"w", std::to_string(columns)}}),
            "", sdk::deadline_after(std::chrono::seconds(5)));
        resize_attempts = resized ? 0 : resize_attempts - 1;
        seen_generation = generation;
      } else if (resize_attempts > 0) {
        resize_attempts = 0;
        seen_generation = generation;
      }
    }
    std::array<pollfd, 2> fds{pollfd{sock, POLLIN, 0},
                              pollfd{input_open ? stdio.in_fd : -1, POLLIN, 0}};
    // Short waits while a resize is still pending, else the 100 ms
    // cancellation and window-size poll.
    int ready = ::poll(fds.data(), fds.size(), resize_attempts > 0 ? 20 : 100);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Error(Errc::internal, std::string("poll failed: ") + std::strerror(errno));
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::read(stdio.in_fd, buffer.data(), buffer.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        // End of input: the shell sees its stdin end (without a TTY).
        input_open = false;
        ::shutdown(sock, SHUT_WR);
      } else if (write_all(sock, std::string_view(buffer.data(), static_cast<std::size_t>(n))) !=
                 0) {
        input_open = false;
      }
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::read(sock, buffer.data(), buffer.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) break;  // the shell ended
      if (!sink.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) break;
    }
  }
  if (auto why = sink.failure(); !why.empty()) {
    return Error(Errc::unavailable, "cannot write the shell's output: " + why);
  }
  return wait_exit_code(engine, exec_id);
}

}  // namespace envd::plugins::docker_runner
