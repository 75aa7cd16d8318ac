// Connecting to the Engine over each transport (unix, tcp, ssh://; TLS is
// engine_tls.cpp), and the errors of a broken transport.
#include "engine_connection.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>

#include "envd/address.hpp"
#include "envd/process.hpp"
#include "ssh_process.hpp"

namespace envd::sdk::engine {

std::string lower_first(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

Status Connection::connect() {
  if (endpoint_.url.rfind("ssh://", 0) == 0) return connect_ssh();
  Status connected = endpoint_.socket_path.empty() ? connect_tcp() : connect_unix();
  if (!connected || !tls_setup_) return connected;
  return handshake();
}

// ssh://: as the docker CLI does, `ssh ... -- host docker system dial-stdio`
// with its stdin and stdout on one end of a socketpair, HTTP on the other.
// BatchMode: a password prompt cannot be answered in a build; keys and
// agents (and ~/.ssh/config) work as for any ssh.
Status Connection::connect_ssh() {
  auto url = parse_url(endpoint_.url);
  if (!url) return url.error();
  auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline_ -
                                                               std::chrono::steady_clock::now());
  ProcessOptions options;
  options.argv = {"ssh",
                  "-o",
                  "BatchMode=yes",
                  "-o",
                  "ConnectTimeout=" + std::to_string(std::max<long>(1, left.count())),
                  "-T",
                  "-x"};
  if (!url->user.empty()) options.argv.insert(options.argv.end(), {"-l", url->user});
  if (url->port) options.argv.insert(options.argv.end(), {"-p", std::to_string(*url->port)});
  options.argv.insert(options.argv.end(), {"--", url->host, "docker"});
  if (!url->path.empty())
    options.argv.insert(options.argv.end(), {"--host", "unix://" + url->path});
  options.argv.insert(options.argv.end(), {"system", "dial-stdio"});
  int ends[2] = {-1, -1};
  // ssh's stderr is a socket rather than a pipe so that stopping its watcher
  // (SshProcess) can wake the read with shutdown().
  int err[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0 ||
      ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, err) != 0) {
    int saved = errno;
    for (int fd : {ends[0], ends[1], err[0], err[1]}) {
      if (fd >= 0) ::close(fd);
    }
    return Error(Errc::internal,
                 std::string("cannot create the pipes for ssh: ") + std::strerror(saved));
  }
  auto pid = spawn_process(options, ends[1], ends[1], err[1]);
  ::close(ends[1]);
  ::close(err[1]);
  if (!pid) {
    ::close(ends[0]);
    ::close(err[0]);
    return Error(Errc::unavailable, "cannot connect to the Docker Engine at " + endpoint_.url +
                                        ": cannot run ssh: " + pid.error().message());
  }
  ssh_ = std::make_shared<SshProcess>();
  if (auto watched = ssh_->watch(*pid, err[0]); !watched) {
    ::close(ends[0]);
    ssh_.reset();
    return watched.error();
  }
  error_code ec;
  stream_.socket().assign(Generic(AF_UNIX, 0), ends[0], ec);
  if (ec) {
    ::close(ends[0]);
    return Error(Errc::internal, "cannot use the ssh socketpair: " + ec.message());
  }
  return {};
}

Status Connection::connect_unix() {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, endpoint_.socket_path.data(), endpoint_.socket_path.size());
  return connect_to(AF_UNIX, 0, &address, sizeof address);
}

// Tries every address the host resolves to, as the docker CLI does. Name
// resolution (getaddrinfo) does not honour the deadline.
Status Connection::connect_tcp() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  std::string port = std::to_string(endpoint_.tcp_port);
  if (int rc = ::getaddrinfo(endpoint_.tcp_host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Error(Errc::unavailable, "cannot connect to the Docker Engine at " + endpoint_.url +
                                        ": cannot resolve '" + endpoint_.tcp_host +
                                        "': " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  Status last = Error(Errc::unavailable, "cannot connect to the Docker Engine at " + endpoint_.url +
                                             ": the host has no address");
  for (addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
    last = connect_to(a->ai_family, a->ai_protocol, a->ai_addr, a->ai_addrlen);
    if (last || last.error().code() == Errc::timeout) break;
    error_code ignored;
    stream_.socket().close(ignored);
  }
  if (last) {
    // Requests and answers are small and sent whole: no Nagle delay.
    int one = 1;
    ::setsockopt(stream_.socket().native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return last;
}

Status Connection::connect_to(int family, int protocol, const void* address, std::size_t length) {
  // Created here rather than by Asio so that it is close-on-exec.
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, protocol);
  if (fd < 0) {
    return Error(Errc::internal, std::string("cannot create a socket: ") + std::strerror(errno));
  }
  error_code ec;
  stream_.socket().assign(Generic(family, protocol), fd, ec);
  if (ec) {
    ::close(fd);
    return Error(Errc::internal, "cannot use a socket: " + ec.message());
  }
  Generic::endpoint target(address, length, protocol);
  ec = run([&](auto handler) {
    stream_.async_connect(target, [handler](error_code e) mutable { handler(e, 0); });
  });
  if (!ec) return {};
  if (cancelled_) return cancelled_error("connecting to the Docker Engine at " + endpoint_.url);
  Errc code = Errc::unavailable;
  if (ec == beast::error::timeout) code = Errc::timeout;
  if (ec == boost::system::errc::permission_denied) code = Errc::permission;
  return Error(code, "cannot connect to the Docker Engine at " + endpoint_.url + ": " +
                         (code == Errc::timeout ? "the deadline passed while connecting"
                                                : lower_first(ec.message())));
}

// The error for a failed read or write during `what` (e.g. "GET /version").
Error Connection::io_error(error_code ec, std::string_view what) {
  if (cancelled_) return cancelled_error(std::string(what) + " on the Docker Engine");
  // TLS 1.3 servers judge the client certificate after the handshake, so a
  // refusal arrives as an alert on the first read.
  if (tls_ && ec.category() == asio::error::get_ssl_category()) return tls_error(ec);
  if (ec == asio::ssl::error::stream_truncated) ec = asio::error::eof;
  if (ssh_ && (ec == http::error::end_of_stream || ec == asio::error::eof ||
               ec == asio::error::connection_reset || ec == asio::error::broken_pipe)) {
    // ssh ended: what it said is the reason (refused, unknown host, no
    // docker on the remote side, ...).
    if (std::string why = ssh_->why(std::chrono::seconds(2)); !why.empty()) {
      return Error(Errc::unavailable,
                   "cannot connect to the Docker Engine at " + endpoint_.url + ": " + why);
    }
  }
  if (ec == beast::error::timeout) {
    return Error(Errc::timeout, "the Docker Engine at " + endpoint_.url + " did not answer " +
                                    std::string(what) + " in time");
  }
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
    return Error(Errc::unavailable, "the Docker Engine at " + endpoint_.url +
                                        " closed the connection during " + std::string(what));
  }
  // The Engine went away with its answer unfinished (stopped, or killed, in
  // a followed log): the answer was no worse than any other.
  if (ec == http::error::partial_message) {
    return Error(Errc::unavailable, "the Docker Engine at " + endpoint_.url +
                                        " closed the connection in the middle of its answer to " +
                                        std::string(what));
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    return Error(Errc::internal, "the Docker Engine at " + endpoint_.url +
                                     " sent an invalid HTTP answer to " + std::string(what) + ": " +
                                     ec.message());
  }
  return Error(Errc::unavailable, "cannot talk to the Docker Engine at " + endpoint_.url + " (" +
                                      std::string(what) + "): " + ec.message());
}

}  // namespace envd::sdk::engine
