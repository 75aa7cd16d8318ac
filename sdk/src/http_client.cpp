// One HTTP exchange over plain TCP or TLS, driven synchronously: every step
// runs the call's own io_context in 100 ms slices, so the deadline and the
// host's cancellation end it promptly.
#include "envd/http_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <optional>

#include "envd/address.hpp"
#include "envd/host.hpp"
#include "envd/text.hpp"

namespace envd::sdk {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using beast::error_code;

constexpr std::size_t kMaxBody = std::size_t{16} << 20;

std::string lower_first(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string ssl_reason(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    if (const char* reason = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
      return reason;
    }
  }
  return lower_first(ec.message());
}

class Call {
 public:
  Call(const HttpServer& server, Url url, HttpDeadline deadline)
      : server_(server), url_(std::move(url)), deadline_(deadline) {}

  Result<HttpAnswer> run(const HttpRequest& request);

 private:
  Status connect();
  Status handshake();
  Error tls_error(const error_code& ec);
  Error io_error(const error_code& ec, const std::string& what);
  std::string connect_prefix() const {
    return "cannot connect to " + server_.name + " at " + server_.base_url;
  }

  // Runs one operation started by `start(handler)` until it completes, the
  // deadline passes or the host cancels.
  template <typename Start>
  error_code step(Start&& start) {
    error_code result = asio::error::would_block;
    bool done = false;
    start([&](error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc_.restart();
    // NOLINTNEXTLINE(bugprone-infinite-loop): the handler ioc_.run_for runs sets `done`.
    while (!done) {
      ioc_.run_for(std::chrono::milliseconds(100));
      if (done) break;
      if (!stopped_ && (cancelled() || std::chrono::steady_clock::now() >= deadline_)) {
        stopped_ = true;
        cancelled_ = cancelled();
        error_code ignored;
        stream_.socket().cancel(ignored);
        stream_.socket().close(ignored);
      }
      if (ioc_.stopped()) ioc_.restart();
    }
    if (stopped_) return asio::error::operation_aborted;
    return result;
  }

  const HttpServer& server_;
  Url url_;
  HttpDeadline deadline_;
  bool stopped_ = false;
  bool cancelled_ = false;
  asio::io_context ioc_{1};
  beast::tcp_stream stream_{ioc_};
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::optional<asio::ssl::stream<beast::tcp_stream&>> tls_;
};

Status Call::connect() {
  std::string port = std::to_string(url_.port.value_or(url_.scheme == "https" ? 443 : 80));
  // Name resolution (getaddrinfo) does not honour the deadline.
  tcp::resolver resolver(ioc_);
  error_code ec;
  auto found = resolver.resolve(url_.host, port, ec);
  if (ec) {
    return Error(Errc::unavailable,
                 connect_prefix() + ": cannot resolve '" + url_.host + "': " + ec.message());
  }
  ec = step([&](auto handler) {
    stream_.async_connect(found,
                          [handler](error_code e, const tcp::endpoint&) mutable { handler(e); });
  });
  if (ec) {
    if (cancelled_) return cancelled_error("connecting to " + server_.name);
    if (stopped_) return Error(Errc::timeout, connect_prefix() + ": the deadline passed");
    return Error(Errc::unavailable, connect_prefix() + ": " + lower_first(ec.message()));
  }
  stream_.socket().set_option(tcp::no_delay(true), ec);
  return {};
}

Status Call::handshake() {
  tls_context_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ::SSL_CTX_set_min_proto_version(tls_context_->native_handle(), TLS1_2_VERSION);
  error_code ec;
  if (server_.ca_file.empty()) {
    tls_context_->set_default_verify_paths(ec);
  } else {
    tls_context_->load_verify_file(server_.ca_file, ec);
  }
  if (ec) {
    return Error(Errc::invalid_argument,
                 "cannot use the CA certificate '" + server_.ca_file + "': " + ssl_reason(ec));
  }
  tls_context_->set_verify_mode(asio::ssl::verify_peer);
  tls_.emplace(stream_, *tls_context_);
  SSL* ssl = tls_->native_handle();
  const std::string& host = url_.host;
  const bool ip = is_ipv4(host) || is_ipv6(host);
  if (!ip) ::SSL_set_tlsext_host_name(ssl, host.c_str());
  X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl);
  // The name must be in a subjectAltName, as Go's clients require: no
  // fallback to the subject's Common Name.
  ::X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  int ok = ip ? ::X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
              : ::X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  if (ok != 1) return Error(Errc::internal, "cannot check the name '" + host + "'");
  ec = step([&](auto handler) {
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [handler](error_code e) mutable { handler(e); });
  });
  if (!ec) return {};
  if (cancelled_) return cancelled_error("connecting to " + server_.name);
  if (stopped_) {
    return Error(Errc::timeout,
                 connect_prefix() + " over TLS: the deadline passed during the handshake");
  }
  return tls_error(ec);
}

Error Call::tls_error(const error_code& ec) {
  std::string why;
  long verify = tls_ ? ::SSL_get_verify_result(tls_->native_handle()) : X509_V_OK;
  std::string ca = server_.ca_file.empty() ? "the system's CA certificates"
                                           : "the CA in '" + server_.ca_file + "'";
  if (verify != X509_V_OK) {
    switch (verify) {
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        why = "its certificate is not valid for '" + url_.host + "'";
        break;
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        why = "its certificate is not signed by " + ca;
        break;
      default:
        why =
            std::string("its certificate was rejected: ") + ::X509_verify_cert_error_string(verify);
    }
  } else if (ec.category() == asio::error::get_ssl_category()) {
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_HTTP_REQUEST:
        why = "it does not speak TLS on this port (use an http:// address for a plain server)";
        break;
      default:
        why = "TLS failed: " + ssl_reason(ec);
    }
  } else {
    why = "it closed the connection during the TLS handshake (" + lower_first(ec.message()) + ")";
  }
  return Error(Errc::unavailable, connect_prefix() + " over TLS: " + why);
}

Error Call::io_error(const error_code& ec, const std::string& what) {
  if (cancelled_) return cancelled_error(what + " on " + server_.name);
  if (stopped_) {
    return Error(Errc::timeout,
                 server_.name + " at " + server_.base_url + " did not answer " + what + " in time");
  }
  if (tls_ && ec.category() == asio::error::get_ssl_category() &&
      ec != asio::ssl::error::stream_truncated) {
    return tls_error(ec);
  }
  if (ec == http::error::body_limit) {
    return Error(Errc::internal, server_.name + " at " + server_.base_url + " answered " + what +
                                     " with more than 16 MiB");
  }
  bool closed = ec == http::error::end_of_stream || ec == asio::error::eof ||
                ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated;
  if (closed) {
    return Error(Errc::unavailable, server_.name + " at " + server_.base_url +
                                        " closed the connection during " + what);
  }
  if (ec == http::error::partial_message) {
    return Error(Errc::unavailable, server_.name + " at " + server_.base_url +
                                        " closed the connection in the middle of its answer to " +
                                        what);
  }
  if (ec.category() == beast::http::make_error_code(http::error::bad_version).category()) {
    return Error(Errc::internal, server_.name + " at " + server_.base_url + " did not answer " +
                                     what + " in HTTP: " + ec.message());
  }
  return Error(Errc::unavailable, server_.name + " at " + server_.base_url + ": " + what + ": " +
                                      lower_first(ec.message()));
}

Result<HttpAnswer> Call::run(const HttpRequest& request) {
  if (auto st = connect(); !st) return st.error();
  if (url_.scheme == "https") {
    if (auto st = handshake(); !st) return st.error();
  }
  std::string target = url_.path + request.path;
  std::string what = request.method + " " + target;
  http::request<http::string_body> req(http::string_to_verb(request.method), target, 11);
  std::string host = is_ipv6(url_.host) ? "[" + url_.host + "]" : url_.host;
  if (url_.port) host += ":" + std::to_string(*url_.port);
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "envd");
  req.set(http::field::accept, "application/json");
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  if (!request.body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = request.body;
  }
  req.prepare_payload();

  auto ec = step([&](auto handler) {
    auto done = [handler](error_code e, std::size_t) mutable { handler(e); };
    if (tls_) {
      http::async_write(*tls_, req, done);
    } else {
      http::async_write(stream_, req, done);
    }
  });
  if (ec) return io_error(ec, what);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxBody);
  ec = step([&](auto handler) {
    auto done = [handler](error_code e, std::size_t) mutable { handler(e); };
    if (tls_) {
      http::async_read(*tls_, buffer, parser, done);
    } else {
      http::async_read(stream_, buffer, parser, done);
    }
  });
  if (ec) return io_error(ec, what);
  HttpAnswer answer;
  answer.status = static_cast<int>(parser.get().result_int());
  answer.body = std::move(parser.get().body());
  // Best effort: the answer is complete whatever the close says.
  error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return answer;
}

}  // namespace

HttpDeadline http_deadline_after(std::chrono::milliseconds timeout) {
  return std::chrono::steady_clock::now() + timeout;
}

Result<HttpAnswer> http_call(const HttpServer& server, const HttpRequest& request,
                             HttpDeadline deadline) {
  auto url = parse_url(server.base_url);
  if (!url) {
    return Error(Errc::invalid_argument, "the address of " + server.name + " '" +
                                             redact_password(server.base_url) +
                                             "' is invalid: " + url.error().message());
  }
  if (url->scheme != "http" && url->scheme != "https") {
    return Error(Errc::invalid_argument, "the address of " + server.name + " '" + server.base_url +
                                             "' is not an http:// or https:// URL");
  }
  // A header or request line is ended by CR LF: one inside a value (a token
  // a server handed out, a path made of a name) would end it early and let
  // the rest pass for headers or a request of its own.
  auto unsafe = [](std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return u < 0x20 || u == 0x7f;
    });
  };
  if (unsafe(request.method) || unsafe(request.path) ||
      request.path.find(' ') != std::string::npos) {
    return Error(Errc::invalid_argument, "cannot call " + server.name + ": the request '" +
                                             printable(request.method + " " + request.path, 120) +
                                             "' holds a space or a control character");
  }
  for (const auto& [name, value] : request.headers) {
    if (unsafe(name) || unsafe(value)) {
      return Error(Errc::invalid_argument, "cannot call " + server.name +
                                               ": the value of header '" + printable(name, 60) +
                                               "' holds a control character");
    }
  }
  try {
    Call call(server, std::move(*url), deadline);
    return call.run(request);
  } catch (const std::exception& e) {
    return Error(Errc::internal,
                 "calling " + server.name + " at " + server.base_url + ": " + e.what());
  }
}

}  // namespace envd::sdk
