#include "kube_exec.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <set>

extern char** environ;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
using namespace asio::experimental::awaitable_operators;

namespace envd::test::kube {
namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

// The children still running, for kill_all_children(). The server runs one thread.
std::set<pid_t>& live_children() {
  static std::set<pid_t> pids;
  return pids;
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) --size;
  out.resize(size);
  return out;
}

struct Child {
  pid_t pid = -1;
  int in = -1;   // our end of its stdin (the pty master for a tty)
  int out = -1;  // our end of its stdout (the pty master for a tty)
  int err = -1;  // our end of its stderr
  int spawn_errno = 0;
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Starts argv with the plan's streams as pipes (or a pty), in a process group
// of its own, with every other descriptor closed.
Child spawn_child(const std::vector<std::string>& argv, const ExecPlan& plan,
                  const ExecOptions& options) {
  Child child;
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  int master = -1;
  std::string slave_path;
  auto fail = [&](int e) {
    for (int* fd : {&in[0], &in[1], &out[0], &out[1], &err[0], &err[1], &master}) close_fd(*fd);
    child.spawn_errno = e;
    return child;
  };
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  struct Cleanup {
    posix_spawn_file_actions_t* a;
    posix_spawnattr_t* b;
    ~Cleanup() {
      posix_spawn_file_actions_destroy(a);
      posix_spawnattr_destroy(b);
    }
  } cleanup{&actions, &attr};

  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (plan.tty) {
    int slave = -1;
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return fail(errno);
    char name[128];
    if (::ttyname_r(slave, name, sizeof name) != 0) {
      ::close(slave);
      return fail(errno);
    }
    ::close(slave);
    slave_path = name;
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    // A new session whose first terminal opened becomes its controlling one.
    flags |= POSIX_SPAWN_SETSID;
    posix_spawn_file_actions_addopen(&actions, 0, slave_path.c_str(), O_RDWR, 0);
    posix_spawn_file_actions_adddup2(&actions, 0, 1);
    posix_spawn_file_actions_adddup2(&actions, 0, 2);
  } else {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
    auto stream = [&](bool used, int(&fds)[2], int target, bool child_reads) {
      if (!used) {
        posix_spawn_file_actions_addopen(&actions, target, "/dev/null",
                                         child_reads ? O_RDONLY : O_WRONLY, 0);
        return true;
      }
      if (::pipe2(fds, O_CLOEXEC) != 0) return false;
      posix_spawn_file_actions_adddup2(&actions, child_reads ? fds[0] : fds[1], target);
      return true;
    };
    if (!stream(plan.use_stdin, in, 0, true) || !stream(plan.use_stdout, out, 1, false) ||
        !stream(plan.use_stderr, err, 2, false)) {
      return fail(errno);
    }
  }
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, flags);

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    if (!options.buildkit_addr.empty() && entry.rfind("BUILDKIT_HOST=", 0) == 0) continue;
    env.push_back(entry);
  }
  if (!options.buildkit_addr.empty()) env.push_back("BUILDKIT_HOST=" + options.buildkit_addr);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  argp.reserve(args.size() + 1);
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argp[0], &actions, &attr, argp.data(), envp.data());
  if (rc != 0) return fail(rc);
  child.pid = pid;
  live_children().insert(pid);
  if (plan.tty) {
    child.out = master;
    child.in = ::fcntl(master, F_DUPFD_CLOEXEC, 3);
  } else {
    close_fd(in[0]);
    close_fd(out[1]);
    close_fd(err[1]);
    child.in = in[1];
    child.out = out[0];
    child.err = err[0];
  }
  return child;
}

// What a container runtime says when exec cannot start the command (runc's words).
std::string runtime_error(const std::string& command, int e) {
  std::string why;
  if (e == ENOENT && command.find('/') == std::string::npos) {
    why = "exec: \"" + command + "\": executable file not found in $PATH";
  } else if (e == ENOENT) {
    why = "exec: \"" + command + "\": stat " + command + ": no such file or directory";
  } else if (e == EACCES) {
    why = "exec: \"" + command + "\": permission denied";
  } else {
    why = "exec: \"" + command + "\": " + std::strerror(e);
  }
  std::string id = "3f1c0d2e9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d";
  return "error executing command in container: failed to exec in container: failed to start "
         "exec \"" +
         id +
         "\": OCI runtime exec failed: exec failed: unable to start container process: " + why +
         ": unknown";
}

std::string go_list(const std::vector<std::string>& argv) {
  std::string out = "[";
  for (std::size_t i = 0; i < argv.size(); ++i) out += (i ? " " : "") + argv[i];
  return out + "]";
}

json::object bare_status(const char* status) {
  return json::object{{"metadata", json::object{}}, {"status", status}};
}

json::object exit_status(int code, const std::string& message) {
  json::object s = bare_status("Failure");
  s["message"] = message;
  s["reason"] = "NonZeroExitCode";
  s["details"] = json::object{
      {"causes",
       json::array{json::object{{"reason", "ExitCode"}, {"message", std::to_string(code)}}}}};
  return s;
}

json::object internal_error(const std::string& cause) {
  return status_object(500, "InternalError", "Internal error occurred: " + cause,
                       json::object{{"causes", json::array{json::object{{"message", cause}}}}},
                       false);
}

// The WebSocket side: one message per write, the channel number (a digit for
// the base64 protocols) in front.
template <class Stream>
class WebSocketConnection final : public ExecConnection {
 public:
  WebSocketConnection(beast::websocket::stream<Stream>& ws, const ExecPlan& plan,
                      asio::any_io_executor ex)
      : ws_(ws),
        plan_(plan),
        base64_(plan.channel == Channel::v4_base64 || plan.channel == Channel::v1_base64),
        lock_(ex, 1) {
    if (base64_) {
      ws_.text(true);
    } else {
      ws_.binary(true);
    }
    ws_.auto_fragment(false);
  }

  asio::awaitable<bool> send_channel(unsigned char channel, std::string_view data) {
    if (!writable_) co_return false;
    std::string frame;
    if (base64_) {
      frame = std::string(1, static_cast<char>('0' + channel)) + base64_encode(data);
    } else {
      frame.reserve(data.size() + 1);
      frame += static_cast<char>(channel);
      frame += data;
    }
    co_await lock_.async_send(boost::system::error_code{}, kUse);
    auto [ec, n] = co_await ws_.async_write(asio::buffer(frame), kUse);
    lock_.try_receive([](boost::system::error_code) {});
    (void)n;
    if (ec) writable_ = false;
    co_return !ec;
  }

  asio::awaitable<bool> send(int fd, std::string_view data) override {
    co_return co_await send_channel(static_cast<unsigned char>(fd), data);
  }

  asio::awaitable<Input> receive() override {
    for (;;) {
      buffer_.clear();
      auto [ec, n] = co_await ws_.async_read(buffer_, kUse);
      (void)n;
      if (ec) co_return Input{};
      std::string data = beast::buffers_to_string(buffer_.data());
      if (data.empty()) continue;
      if (plan_.channel == Channel::v5 && static_cast<unsigned char>(data[0]) == 255) {
        // v5's CLOSE signal: [255, channel]. Anything else ends the connection, as in wsstream.
        if (data.size() != 2 || static_cast<unsigned char>(data[1]) > 4) {
          co_return Input{Input::Kind::stop};
        }
        if (data[1] == 0) co_return Input{Input::Kind::stdin_end};
        continue;
      }
      unsigned channel = static_cast<unsigned char>(data[0]);
      std::string payload = data.substr(1);
      if (base64_) {
        channel -= '0';
        auto decoded = base64_decode(payload);
        if (!decoded) continue;
        payload = std::move(*decoded);
      }
      if (channel == 0 && plan_.use_stdin) {
        co_return Input{Input::Kind::stdin_data, std::move(payload)};
      }
      if (channel == 4 && plan_.tty) {
        boost::system::error_code jec;
        json::value message = json::parse(payload, jec);
        if (auto size = jec ? std::nullopt : terminal_size(message)) {
          co_return Input{Input::Kind::resize, "", size->first, size->second};
        }
      }
    }
  }

  // The status on the error channel (v1 protocols send failures only, as
  // text), then the close handshake.
  asio::awaitable<void> finish(const json::object& status) override {
    if (plan_.channel != Channel::v1 && plan_.channel != Channel::v1_base64) {
      co_await send_channel(3, json::serialize(status));
    } else if (status.at("status").as_string() != "Success") {
      co_await send_channel(3, std::string(status.at("message").as_string()));
    }
    if (writable_) {
      co_await lock_.async_send(boost::system::error_code{}, kUse);
      auto [ec] = co_await ws_.async_close(beast::websocket::close_code::normal, kUse);
      lock_.try_receive([](boost::system::error_code) {});
      (void)ec;
      writable_ = false;
    }
  }

 private:
  beast::websocket::stream<Stream>& ws_;
  const ExecPlan& plan_;
  const bool base64_;
  // One write at a time on the WebSocket: a channel of one slot is the lock.
  asio::experimental::channel<void(boost::system::error_code)> lock_;
  bool writable_ = true;
  beast::flat_buffer buffer_;
};

}  // namespace

std::optional<std::pair<unsigned short, unsigned short>> terminal_size(const json::value& message) {
  if (!message.is_object()) return std::nullopt;
  const auto* w = message.as_object().if_contains("Width");
  const auto* h = message.as_object().if_contains("Height");
  if (w == nullptr || h == nullptr || !w->is_number() || !h->is_number()) return std::nullopt;
  return std::make_pair(static_cast<unsigned short>(w->to_number<double>()),
                        static_cast<unsigned short>(h->to_number<double>()));
}

asio::awaitable<ExecResult> run_command(ExecConnection& connection, const ExecPlan& plan,
                                        const ExecOptions& options) {
  using Input = ExecConnection::Input;
  auto ex = co_await asio::this_coro::executor;
  ExecResult result;
  const bool v5 = plan.channel == Channel::v5;

  std::vector<std::string> argv = plan.command;
  if (!argv.empty() && argv[0] == "buildctl" && !options.buildctl.empty()) {
    argv[0] = options.buildctl;
  }
  result.argv = argv;

  Child child;
  if (plan.failure.empty()) child = spawn_child(argv, plan, options);
  if (!plan.failure.empty() || child.pid < 0) {
    // The stream translator reports what went wrong behind it as an InternalError.
    std::string cause = !plan.failure.empty()
                            ? "unable to upgrade connection: " + plan.failure
                            : runtime_error(plan.command.front(), child.spawn_errno);
    if (plan.failure.empty() && v5) cause = "Internal error occurred: " + cause;
    result.error = "Internal error occurred: " + cause;
    co_await connection.finish(internal_error(cause));
    // Let the client's end arrive.
    for (;;) {
      Input in = co_await connection.receive();
      if (in.kind == Input::Kind::gone || in.kind == Input::Kind::stop) break;
    }
    co_return result;
  }

  asio::posix::stream_descriptor child_in(ex);
  asio::posix::stream_descriptor child_out(ex);
  asio::posix::stream_descriptor child_err(ex);
  if (child.in >= 0) child_in.assign(child.in);
  if (child.out >= 0) child_out.assign(child.out);
  if (child.err >= 0) child_err.assign(child.err);

  bool client_gone = false;
  auto gone_at = std::chrono::steady_clock::now();
  bool closing = false;  // the end is being reported
  auto close_stdin = [&] {
    if (plan.tty) return;  // a terminal has no half-close; the grace period applies
    boost::system::error_code ignored;
    child_in.close(ignored);
  };

  auto reader = [&]() -> asio::awaitable<void> {
    for (;;) {
      Input in = co_await connection.receive();
      if (in.kind == Input::Kind::gone) {
        if (!closing) {
          client_gone = true;
          gone_at = std::chrono::steady_clock::now();
          if (plan.tty && child.pid > 0) ::kill(-child.pid, SIGHUP);
        }
        break;
      }
      if (in.kind == Input::Kind::stop) break;
      if (in.kind == Input::Kind::stdin_end) {
        close_stdin();
      } else if (in.kind == Input::Kind::stdin_data && plan.use_stdin && child_in.is_open()) {
        result.stdin_bytes += in.data.size();
        auto [wec, written] = co_await asio::async_write(child_in, asio::buffer(in.data), kUse);
        (void)written;
        if (wec) close_stdin();
      } else if (in.kind == Input::Kind::resize && plan.tty) {
        winsize size{};
        size.ws_col = in.width;
        size.ws_row = in.height;
        ::ioctl(child.out, TIOCSWINSZ, &size);
      }
    }
    close_stdin();
  };

  int pumps_running = 0;
  auto pump = [&](asio::posix::stream_descriptor& from, int fd,
                  std::size_t& counter) -> asio::awaitable<void> {
    if (!from.is_open()) co_return;
    ++pumps_running;
    std::array<char, 32 * 1024> chunk;
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(chunk), kUse);
      if (ec) break;  // EOF, EIO from a pty whose child is gone, or closed by the watcher
      counter += n;
      if (!client_gone) co_await connection.send(fd, std::string_view(chunk.data(), n));
    }
    --pumps_running;
  };

  int wait_status = 0;
  auto watcher = [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(ex);
    bool exited = false;
    bool killed = false;
    bool streams_cut = false;
    auto exited_at = std::chrono::steady_clock::now();
    auto poll = std::chrono::milliseconds(2);
    for (;;) {
      auto now = std::chrono::steady_clock::now();
      if (!exited) {
        pid_t r = ::waitpid(child.pid, &wait_status, WNOHANG);
        if (r == child.pid || (r < 0 && errno == ECHILD)) {
          exited = true;
          exited_at = now;
          live_children().erase(child.pid);
        }
      }
      if (exited && pumps_running == 0) break;
      if (exited && !streams_cut && now - exited_at > std::chrono::seconds(2)) {
        // Something the child started keeps its output open: stop waiting for it.
        boost::system::error_code ignored;
        child_out.close(ignored);
        child_err.close(ignored);
        streams_cut = true;
      }
      if (!exited && !killed && client_gone && now - gone_at > options.orphan_grace) {
        ::kill(-child.pid, SIGKILL);
        killed = true;
      }
      timer.expires_after(poll);
      co_await timer.async_wait(kUse);
      poll = std::min(poll * 2, std::chrono::milliseconds(50));
    }
  };

  auto outputs = [&]() -> asio::awaitable<void> {
    co_await (pump(child_out, 1, result.stdout_bytes) && pump(child_err, 2, result.stderr_bytes) &&
              watcher());
    if (WIFSIGNALED(wait_status)) {
      result.signal = WTERMSIG(wait_status);
      result.exit_code = 128 + result.signal;
    } else {
      result.exit_code = WEXITSTATUS(wait_status);
    }
    result.client_gone = client_gone;
    json::object status;
    if (result.exit_code == 0) {
      status = bare_status("Success");
    } else if (v5) {
      status = exit_status(result.exit_code,
                           "command terminated with non-zero exit code: command terminated with "
                           "exit code " +
                               std::to_string(result.exit_code));
    } else {
      status = exit_status(result.exit_code,
                           "command terminated with non-zero exit code: error executing command " +
                               go_list(plan.command) + ", exit code " +
                               std::to_string(result.exit_code));
    }
    closing = true;
    if (!client_gone) co_await connection.finish(status);
  };

  co_await (reader() && outputs());
  boost::system::error_code ignored;
  child_in.close(ignored);
  child_out.close(ignored);
  child_err.close(ignored);
  co_return result;
}

template <class Stream>
asio::awaitable<ExecResult> run_exec(beast::websocket::stream<Stream>& ws, const ExecPlan& plan,
                                     const ExecOptions& options) {
  WebSocketConnection<Stream> connection(ws, plan, co_await asio::this_coro::executor);
  // The apiserver first sends an empty message on the lowest writable channel.
  co_await connection.send_channel(plan.use_stdout ? 1 : plan.use_stderr ? 2 : 3, "");
  co_return co_await run_command(connection, plan, options);
}

template asio::awaitable<ExecResult> run_exec(beast::websocket::stream<beast::tcp_stream>&,
                                              const ExecPlan&, const ExecOptions&);
template asio::awaitable<ExecResult> run_exec(beast::websocket::stream<TlsStream>&, const ExecPlan&,
                                              const ExecOptions&);

void kill_all_children() {
  for (pid_t pid : live_children()) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  }
  for (pid_t pid : live_children()) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  live_children().clear();
}

}  // namespace envd::test::kube
