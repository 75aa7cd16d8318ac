// The upgraded side of `kubectl exec`: runs the command of an ExecPlan as a
// child process of this server (buildctl replaced by the real one, with
// BUILDKIT_HOST set) and carries its stdin, stdout and stderr over the
// client's connection, then reports its exit as the plan's protocol does and
// ends the connection. The connection is a WebSocket with the remotecommand
// channels (run_exec, kube_exec.cpp) or SPDY/3.1 streams (run_spdy_exec,
// kube_spdy_exec.cpp); both drive the one process side, run_command().
// Test-only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kube_api.hpp"

namespace envd::test::kube {

struct ExecOptions {
  std::string buildctl;       // replaces argv[0] "buildctl"; empty: looked up on PATH
  std::string buildkit_addr;  // BUILDKIT_HOST of the child; empty: left as it is
  // How long a child may outlive its client (stdin is closed at once) before
  // it is killed.
  std::chrono::milliseconds orphan_grace{5000};
};

struct ExecResult {
  std::vector<std::string> argv;  // what ran
  int exit_code = -1;             // 128 + signal for a killed child; -1 if it never started
  int signal = 0;
  bool client_gone = false;  // the client left before the child's end was reported
  std::size_t stdin_bytes = 0;
  std::size_t stdout_bytes = 0;
  std::size_t stderr_bytes = 0;
  std::string error;           // why the command did not run, as reported on the error channel
  std::string protocol_error;  // how the client broke SPDY, if it did (the session then ended)
};

// The client's side of an exec as the process side sees it, whatever the wire.
// Used from one coroutine for receive() and one at a time for send() and finish().
class ExecConnection {
 public:
  struct Input {
    enum class Kind {
      stdin_data,  // `data` for the command's stdin
      stdin_end,   // the client closed stdin
      resize,      // the terminal is now `width` x `height`
      stop,        // the client broke the protocol: stdin is over, nothing more is read
      gone,        // the client left (or, after finish(), acknowledged the end)
    };
    Input() = default;
    explicit Input(Kind k, std::string d = {}, unsigned short w = 0, unsigned short h = 0)
        : kind(k), data(std::move(d)), width(w), height(h) {}
    Kind kind = Kind::gone;
    std::string data;
    unsigned short width = 0;
    unsigned short height = 0;
  };

  virtual ~ExecConnection() = default;
  // The client's next input. Not called again after `stop` or `gone`.
  virtual boost::asio::awaitable<Input> receive() = 0;
  // Writes the command's output, fd 1 or 2; false once the client cannot be written to.
  virtual boost::asio::awaitable<bool> send(int fd, std::string_view data) = 0;
  // Reports the exec's end (a v1 Status as a kubelet, or for v5 the
  // apiserver, makes it; each protocol encodes it its way) and ends the
  // exchange: receive() then reports `gone` once the client has followed.
  virtual boost::asio::awaitable<void> finish(const boost::json::object& status) = 0;
};

// Runs `plan` with the client on `connection`: spawns the command (or
// reports why it cannot run), pumps stdin, stdout and stderr, reports the
// exit. The child is always reaped before this returns.
boost::asio::awaitable<ExecResult> run_command(ExecConnection& connection, const ExecPlan& plan,
                                               const ExecOptions& options);

// Runs `plan` on an accepted WebSocket `ws` (its subprotocol already
// answered) and closes it.
template <class Stream>
boost::asio::awaitable<ExecResult> run_exec(boost::beast::websocket::stream<Stream>& ws,
                                            const ExecPlan& plan, const ExecOptions& options);

// Runs `plan` on `stream`, just switched to SPDY/3.1 (the 101 sent), whose
// first bytes may already be in `buffer`: waits for the client's streams as
// the kubelet does (error, then the plan's stdin, stdout, stderr, and resize
// for a tty; 30 s at most), runs the command, then resets every stream, says
// GOAWAY and waits a little for the client to hang up.
template <class Stream>
boost::asio::awaitable<ExecResult> run_spdy_exec(Stream& stream, boost::beast::flat_buffer& buffer,
                                                 const ExecPlan& plan, const ExecOptions& options);

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

extern template boost::asio::awaitable<ExecResult> run_exec(
    boost::beast::websocket::stream<boost::beast::tcp_stream>&, const ExecPlan&,
    const ExecOptions&);
extern template boost::asio::awaitable<ExecResult> run_exec(
    boost::beast::websocket::stream<TlsStream>&, const ExecPlan&, const ExecOptions&);
extern template boost::asio::awaitable<ExecResult> run_spdy_exec(boost::beast::tcp_stream&,
                                                                 boost::beast::flat_buffer&,
                                                                 const ExecPlan&,
                                                                 const ExecOptions&);
extern template boost::asio::awaitable<ExecResult> run_spdy_exec(TlsStream&,
                                                                 boost::beast::flat_buffer&,
                                                                 const ExecPlan&,
                                                                 const ExecOptions&);

// The terminal size of a resize message ({"Width": W, "Height": H}), if it is one.
std::optional<std::pair<unsigned short, unsigned short>> terminal_size(
    const boost::json::value& message);

// SIGKILLs the process groups of every child still running and reaps them:
// for shutdown.
void kill_all_children();

}  // namespace envd::test::kube
