// The WebSocket side of `kubectl exec`: runs the command of an ExecPlan as a
// child process of this server (buildctl replaced by the real one, with
// BUILDKIT_HOST set) and carries its stdin, stdout and stderr over the
// remotecommand channels of the negotiated subprotocol, then reports its exit
// on the error channel and closes. Test-only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <string>
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
  std::string error;  // why the command did not run, as reported on the error channel
};

// Runs `plan` on an accepted WebSocket `ws` (its subprotocol already
// answered) and closes it. The child is always reaped before this returns.
template <class Stream>
boost::asio::awaitable<ExecResult> run_exec(boost::beast::websocket::stream<Stream>& ws,
                                            const ExecPlan& plan, const ExecOptions& options);

extern template boost::asio::awaitable<ExecResult> run_exec(
    boost::beast::websocket::stream<boost::beast::tcp_stream>&, const ExecPlan&,
    const ExecOptions&);
extern template boost::asio::awaitable<ExecResult> run_exec(
    boost::beast::websocket::stream<boost::beast::ssl_stream<boost::beast::tcp_stream>>&,
    const ExecPlan&, const ExecOptions&);

// SIGKILLs the process groups of every child still running and reaps them:
// for shutdown.
void kill_all_children();

}  // namespace envd::test::kube
