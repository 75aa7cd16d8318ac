// Private to the SDK (never installed): one connection to the Docker Engine
// per call of DockerEngine, whatever the transport.
//
// The pieces live in one file per concern:
//   docker_settings.cpp    DOCKER_HOST and the TLS variables (public API)
//   engine_connection.cpp  connecting: unix, tcp (every address), ssh://, and
//                          the errors of the transport
//   engine_tls.cpp         the OpenSSL context, the handshake and its errors
//   ssh_process.*          the ssh process behind an ssh:// connection
//   http_exchange.cpp      HTTP framing: requests, answers, streamed and
//                          chunked bodies, the hijack and the daemon's errors
//   tls_relay.cpp          a hijacked TLS connection relayed to a socketpair
//   docker_engine.cpp      DockerEngine itself: version negotiation and calls
#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "envd/docker_engine.hpp"
#include "envd/host.hpp"

namespace envd::sdk::engine {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
// One socket type for unix and TCP endpoints.
using Generic = asio::generic::stream_protocol;
using Stream = beast::basic_stream<Generic, asio::any_io_executor, beast::unlimited_rate_policy>;
using beast::error_code;

// `text` with its first letter in lower case (messages of the system start
// with a capital).
std::string lower_first(std::string text);

// OpenSSL's reason for a TLS error code of Asio, e.g. "wrong version number".
std::string ssl_reason(const error_code& ec);

// The OpenSSL context for `tls`: CA, client certificate and key loaded and
// checked. Errc::invalid_argument naming the file that cannot be used.
Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const DockerTls& tls);

// The Error a non-2xx answer of the Engine at `url` to `request` ("GET
// /_ping") stands for: the Engine's own message, else (a proxy's page, a web
// server where the Engine was expected) the request and the status.
Error answer_error(const std::string& url, std::string_view request, int status,
                   std::string_view body);

// Delivers streamed data to the caller's callback, whole lines or raw pieces.
class Delivery {
 public:
  Delivery(StreamMode mode, const EngineDataCallback& callback)
      : mode_(mode), callback_(callback) {}

  bool put(std::string_view data);
  bool finish();

 private:
  StreamMode mode_;
  const EngineDataCallback& callback_;
  std::string pending_;
};

class SshProcess;

// TLS settings with the OpenSSL context made from them (shared by every
// connection of one DockerEngine; an SSL_CTX may be used from several threads).
struct TlsSetup {
  DockerTls settings;
  std::shared_ptr<asio::ssl::context> context;
};

// One connection to the engine, driven synchronously: each operation runs the
// private io_context until it completes or the deadline closes the socket.
// Over TLS every operation goes through tls_, which wraps stream_ (whose
// deadline still applies underneath).
class Connection {
 public:
  // The endpoint is copied: a hijacked TLS connection outlives its DockerEngine.
  Connection(DockerEndpoint endpoint, std::optional<TlsSetup> tls, Deadline deadline)
      : endpoint_(std::move(endpoint)), tls_setup_(std::move(tls)), deadline_(deadline) {}

  // Connects over the endpoint's transport (engine_connection.cpp); over TLS
  // the handshake is done too (engine_tls.cpp).
  Status connect();

  bool is_tls() const { return tls_.has_value(); }

  // HTTP (http_exchange.cpp).
  Result<EngineResponse> exchange(std::string_view method, const std::string& target,
                                  std::string_view body_json, const EngineHeaders& headers,
                                  std::string_view what, std::string* api_version = nullptr);
  Result<int> stream(std::string_view method, const std::string& target, std::string_view body_json,
                     const EngineHeaders& headers, Delivery& delivery, std::string_view what);
  Result<int> upload(std::string_view method, const std::string& target,
                     std::string_view content_type, const EngineBodySource& source,
                     Delivery& delivery, std::string_view what);
  // Sends an upgrade request and reads the answer's head; on 101/200 the
  // connection is left with nothing of the upgraded protocol consumed.
  Status hijack(std::string_view method, const std::string& target, std::string_view body_json,
                const EngineHeaders& headers, std::string_view protocol, std::string_view what);
  // After a plain hijack(): the socket itself, blocking, owned by the caller.
  Result<int> take_socket();
  Error status_error(std::string_view what, int status, std::string_view body) const;

  // After a TLS hijack() (tls_relay.cpp): copies bytes between the TLS
  // connection and `local` (our end of a socketpair) until both directions
  // ended. Takes `local`. stop_relay() makes it return soon; it may be called
  // from any thread, before, during or after relay().
  void relay(int local);
  void stop_relay();

 private:
  struct TlsPump;

  // engine_connection.cpp
  Status connect_ssh();
  Status connect_unix();
  Status connect_tcp();
  Status connect_to(int family, int protocol, const void* address, std::size_t length);
  Error io_error(error_code ec, std::string_view what);

  // engine_tls.cpp
  Status handshake();
  Error tls_error(error_code ec);

  // http_exchange.cpp
  template <typename Body>
  void prepare(http::request<Body>& req, std::string_view method, const std::string& target);
  Status send(std::string_view method, const std::string& target, std::string_view body_json,
              const EngineHeaders& headers, std::string_view upgrade, std::string_view what);
  Error write_error(error_code ec, std::string_view what);
  Result<int> read_streamed(Delivery& delivery, std::string_view what);
  Error cancelled(std::string_view what) const;
  void take_arrived_head(std::string& head);

  // Runs `op(stream, handler)` on the TLS stream, or on the plain one.
  template <typename Op>
  error_code io(Op&& op) {
    return run([&](auto handler) {
      if (tls_) {
        op(*tls_, std::move(handler));
      } else {
        op(stream_, std::move(handler));
      }
    });
  }

  // Runs one asynchronous operation started by `start(handler)` to completion,
  // the deadline, or the host's cancellation (checked every 100 ms, so Ctrl-C
  // ends even a long pull or a silent daemon's wait within a fraction of a
  // second).
  // Once cancelled, a connection starts nothing more: a caller's follow-up
  // (reading the answer to a body cut short) would otherwise wait for a
  // daemon that may never answer, until the deadline.
  template <typename Start>
  error_code run(Start&& start) {
    if (cancelled_) return asio::error::operation_aborted;
    error_code result = asio::error::would_block;
    bool done = false;
    stream_.expires_at(deadline_);
    start([&](error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    ioc_.restart();
    while (!ioc_.stopped()) {
      ioc_.run_for(std::chrono::milliseconds(100));
      if (!done && !cancelled_ && sdk::cancelled()) {
        cancelled_ = true;
        stream_.cancel();
      }
    }
    if (cancelled_) return asio::error::operation_aborted;
    if (!done) return asio::error::operation_aborted;
    return result;
  }

  using TlsStream = asio::ssl::stream<Stream&>;

  DockerEndpoint endpoint_;
  std::optional<TlsSetup> tls_setup_;
  Deadline deadline_;
  bool cancelled_ = false;  // the host cancelled an operation of this connection
  asio::io_context ioc_{1};
  Stream stream_{ioc_};
  std::optional<TlsStream> tls_;     // after stream_: it refers to it
  std::shared_ptr<SshProcess> ssh_;  // ssh:// only
  beast::flat_buffer buffer_;
  TlsPump* pump_ = nullptr;  // while relay() runs; touched only on its thread
};

// Hands a hijacked TLS connection to a relay (kept by relay_registry()) and
// returns the caller's end of the socketpair (blocking, close-on-exec).
Result<int> start_tls_relay(std::unique_ptr<Connection> connection);

}  // namespace envd::sdk::engine
