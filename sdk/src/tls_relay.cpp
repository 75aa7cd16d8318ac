// A hijacked TLS connection handed to the caller as one end of a socketpair:
// one relay thread (owned by relay_registry()) copies between the two.
#include "engine_connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "envd/relay.hpp"

namespace envd::sdk::engine {
namespace {

constexpr std::size_t kRelayBuffer = std::size_t{16} * 1024;

}  // namespace

// The two copy loops of relay(), on one thread.
struct Connection::TlsPump {
  TlsStream& tls;
  Stream& tcp;
  asio::local::stream_protocol::socket& caller;
  std::array<char, kRelayBuffer> up{};
  std::array<char, kRelayBuffer> down{};
  bool up_done = false;
  bool down_done = false;
  bool closed = false;

  void close() {
    if (closed) return;
    closed = true;
    error_code ignored;
    caller.close(ignored);
    tcp.socket().close(ignored);
  }

  void to_daemon() {
    caller.async_read_some(asio::buffer(up), [this](error_code ec, std::size_t n) {
      if (closed) return;
      if (ec) {
        // The caller is done writing (or gone): the daemon reads EOF. A TCP
        // shutdown without close_notify is what Go's TLS reads as EOF too.
        up_done = true;
        error_code ignored;
        tcp.socket().shutdown(asio::socket_base::shutdown_send, ignored);
        if (down_done) close();
        return;
      }
      asio::async_write(tls, asio::buffer(up.data(), n), [this](error_code e, std::size_t) {
        if (closed) return;
        if (e) return close();
        to_daemon();
      });
    });
  }

  void to_caller() {
    tls.async_read_some(asio::buffer(down), [this](error_code ec, std::size_t n) {
      if (closed) return;
      if (ec) {
        down_done = true;
        error_code ignored;
        caller.shutdown(asio::socket_base::shutdown_send, ignored);
        if (up_done) close();
        return;
      }
      asio::async_write(caller, asio::buffer(down.data(), n), [this](error_code e, std::size_t) {
        if (closed) return;
        if (e) return close();  // the caller closed its end
        to_caller();
      });
    });
  }
};

// After a TLS hijack(): copies bytes between the TLS connection and `local`
// (our end of a socketpair) until both directions ended. End of input on one
// side is passed on as a write shutdown of the other, so a caller's
// shutdown(SHUT_WR) reaches the daemon as the end of its stdin. Takes `local`.
void Connection::relay(int local) {
  stream_.expires_never();
  asio::local::stream_protocol::socket peer(ioc_);
  error_code ec;
  peer.assign(asio::local::stream_protocol(), local, ec);
  if (ec) {
    ::close(local);
    return;
  }
  TlsPump pump{*tls_, stream_, peer};
  pump_ = &pump;
  pump.to_daemon();
  pump.to_caller();
  ioc_.restart();
  ioc_.run();
  pump_ = nullptr;
}

// A handler posted to the loop runs on relay()'s thread, so the pump is only
// ever touched there; posted before relay() runs the loop, it waits for it.
void Connection::stop_relay() {
  asio::post(ioc_, [this] {
    if (pump_ != nullptr) pump_->close();
  });
}

Result<int> start_tls_relay(std::unique_ptr<Connection> connection) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return Error(Errc::internal, std::string("cannot create a socketpair for the TLS relay: ") +
                                     std::strerror(errno));
  }
  std::shared_ptr<Connection> c(std::move(connection));
  auto relay = Relay::run(
      "TLS relay", [c, theirs = ends[1]] { c->relay(theirs); }, [c] { c->stop_relay(); });
  if (!relay) {
    ::close(ends[0]);
    ::close(ends[1]);
    return relay.error();
  }
  relay_registry().adopt(std::move(*relay));
  return ends[0];
}

}  // namespace envd::sdk::engine
