#include "buildkit/tls_tunnel.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace envd::buildkit {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kRelayBuffer = std::size_t{64} * 1024;
constexpr const char* kHandshakeFailed = "TLS handshake failed: ";

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

bool is_ip(const std::string& host) {
  error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

// OpenSSL's reason for an error of Asio's SSL category, e.g. "wrong version number".
std::string ssl_reason(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* reason = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    if (reason != nullptr) return reason;
  }
  return ec.message();
}

int reason_code(const error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return 0;
  return ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
}

// An ASN.1 time as "2021-01-01 00:00:00 UTC".
std::string utc_time(const ASN1_TIME* time) {
  struct tm parts {};
  if (time == nullptr || ::ASN1_TIME_to_tm(time, &parts) != 1) return "an unreadable date";
  char text[32];
  return std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts) > 0
             ? std::string(text)
             : std::string("an unreadable date");
}

// What in the client's own certificate (the first of tls-cert) a daemon
// rejects whatever CA signed it: its dates, or an extended key usage without
// clientAuth. Empty when none of that is wrong.
std::string own_certificate_problem(const std::string& cert_pem) {
  std::unique_ptr<BIO, decltype(&::BIO_free)> bio(
      ::BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), &::BIO_free);
  if (!bio) return {};
  std::unique_ptr<X509, decltype(&::X509_free)> cert(
      ::PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &::X509_free);
  ::ERR_clear_error();
  if (!cert) return {};
  if (::X509_cmp_current_time(::X509_get0_notAfter(cert.get())) < 0) {
    return "tls-cert expired on " + utc_time(::X509_get0_notAfter(cert.get()));
  }
  if (::X509_cmp_current_time(::X509_get0_notBefore(cert.get())) > 0) {
    return "tls-cert is not valid until " + utc_time(::X509_get0_notBefore(cert.get()));
  }
  if ((::X509_get_extension_flags(cert.get()) & EXFLAG_XKUSAGE) != 0 &&
      (::X509_get_extended_key_usage(cert.get()) & XKU_SSL_CLIENT) == 0) {
    return "tls-cert is not for client authentication: its extended key usage lacks clientAuth";
  }
  return {};
}

// The cause of a TLS failure seen by the client, handshake or first read: an
// alert the daemon sent, or a daemon that does not speak TLS. "" when `ec`
// says neither. `cert_pem` is the client certificate sent, if any: a
// rejection of it names what is wrong with it, when envd can tell.
std::string alert_cause(const error_code& ec, bool sent_client_cert, const std::string& cert_pem) {
  switch (reason_code(ec)) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_HTTP_REQUEST:
      return "the daemon does not speak TLS on this address (is it plaintext?)";
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return "the daemon requires a client certificate (set --builder-tls-cert and "
             "--builder-tls-key)";
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      if (!sent_client_cert) {
        return "the daemon requires a client certificate (set --builder-tls-cert and "
               "--builder-tls-key)";
      }
      if (std::string problem = own_certificate_problem(cert_pem); !problem.empty()) {
        return "the daemon rejected the client certificate (" + problem + ") (" + ssl_reason(ec) +
               ")";
      }
      return "the daemon rejected the client certificate (tls-cert is not signed by a CA the "
             "daemon trusts) (" +
             ssl_reason(ec) + ")";
    default:
      return {};
  }
}

bool is_eof(const error_code& ec) {
  return ec == asio::error::eof || ec == ssl::error::stream_truncated ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

// ---- target ------------------------------------------------------------------

Result<TcpTarget> parse_tcp_target(const std::string& target) {
  std::string rest = target;
  for (const char* scheme : {"tcp://", "dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (rest.rfind(scheme, 0) == 0) {
      rest = rest.substr(std::strlen(scheme));
      break;
    }
  }
  auto fail = [&] {
    return Error(Errc::invalid_argument,
                 "TLS needs a TCP target such as ipv4:10.0.0.5:8888 or dns:///host:8888, not '" +
                     target + "'");
  };
  TcpTarget out;
  std::string port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return fail();
    }
    out.host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string::npos || rest.find(':') != colon) return fail();
    out.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (out.host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return fail();
  }
  unsigned long number = std::stoul(port);
  if (number == 0 || number > 65535) return fail();
  out.port = static_cast<std::uint16_t>(number);
  return out;
}

// ---- tunnel state --------------------------------------------------------------

struct TlsTunnel::State {
  asio::io_context io;
  ssl::context context{ssl::context::tls_client};
  std::optional<ssl::stream<tcp::socket>> tls;
  std::optional<asio::local::stream_protocol::socket> local;
  std::array<char, kRelayBuffer> up{};    // gRPC -> daemon
  std::array<char, kRelayBuffer> down{};  // daemon -> gRPC
  bool sent_client_cert = false;
  std::string client_cert_pem;  // what was sent, to say why a daemon rejects it
  // Whether the daemon's own certificate (the chain's leaf) holds a
  // subjectAltName, noted while it is verified: after a failed handshake
  // OpenSSL keeps no peer certificate to read it from.
  bool daemon_cert_has_san = true;
  bool closed = false;  // relay thread only
  int grpc_fd = -1;
  std::thread thread;

  mutable std::mutex mu;
  std::string failure;  // guarded by mu

  ~State() {
    if (grpc_fd >= 0) ::close(grpc_fd);
  }

  // Closes both sides; pending operations end with operation_aborted, after
  // which io.run() returns. Relay thread only.
  void close_all() {
    if (closed) return;
    closed = true;
    error_code ignored;
    if (local) local->close(ignored);
    if (tls) tls->lowest_layer().close(ignored);
  }

  // The daemon side failed: remember a TLS cause for connect() to report.
  void fail(const error_code& ec) {
    if (!closed && ec != asio::error::operation_aborted) {
      std::string cause = alert_cause(ec, sent_client_cert, client_cert_pem);
      if (!cause.empty()) {
        std::lock_guard lock(mu);
        failure = kHandshakeFailed + cause;
      }
    }
    close_all();
  }

  void pump_up() {
    local->async_read_some(asio::buffer(up), [this](const error_code& ec, std::size_t n) {
      if (ec) return close_all();  // gRPC closed its end
      asio::async_write(*tls, asio::buffer(up.data(), n),
                        [this](const error_code& wec, std::size_t) {
                          // A daemon that refuses the client sends its alert
                          // and resets: the pending read still gets the alert
                          // (or the reset), and fails the tunnel with it.
                          if (wec) return;
                          pump_up();
                        });
    });
  }

  void pump_down() {
    tls->async_read_some(asio::buffer(down), [this](const error_code& ec, std::size_t n) {
      if (ec) return fail(ec);
      asio::async_write(*local, asio::buffer(down.data(), n),
                        [this](const error_code& wec, std::size_t) {
                          if (wec) return close_all();
                          pump_down();
                        });
    });
  }
};

namespace {

// Runs one asynchronous step on `io` until it completes, `end` passes or
// `cancelled` says so (checked every 50 ms); then `abort` ends it. Returns the
// step's error and whether the deadline cut it (a cancelled step's error is
// operation_aborted).
template <typename Initiate, typename Abort>
std::pair<error_code, bool> run_step(asio::io_context& io, Clock::time_point end,
                                     const std::function<bool()>& cancelled, Initiate initiate,
                                     Abort abort) {
  error_code result = asio::error::would_block;
  bool done = false;
  bool expired = false;
  bool aborted = false;
  asio::steady_timer timer(io, end);
  timer.async_wait([&](const error_code& ec) {
    if (ec || done || aborted) return;
    expired = true;
    aborted = true;
    abort();
  });
  initiate([&](const error_code& ec) {
    done = true;
    result = ec;
    timer.cancel();
  });
  io.restart();
  while (!io.stopped()) {
    io.run_for(std::chrono::milliseconds(50));
    if (!done && !aborted && cancelled()) {
      aborted = true;
      abort();
    }
  }
  return {result, expired};
}

Error setup_error(const std::string& what, const error_code& ec) {
  return Error(Errc::invalid_argument, "TLS setup failed: " + what + " (" + ssl_reason(ec) + ")");
}

// Why verifying the daemon's certificate failed, and what to do about it.
std::string verify_cause(long verify, const std::string& name, bool own_ca, bool peer_has_san) {
  switch (verify) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      // A name only in the subject's Common Name is not taken (as Go's
      // clients, buildctl's among them, do not take it): said, since
      // OpenSSL's own fallback to it would have accepted the certificate.
      if (!peer_has_san) {
        return "the daemon's certificate has no subjectAltName, and a name in its Common Name "
               "alone is not accepted: reissue it with subjectAltName=DNS:<name> or IP:<address>";
      }
      return "the daemon's certificate is not valid for '" + name +
             "' (check the address or --builder-tls-servername)";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return own_ca ? "the daemon's certificate is not signed by the configured CA (tls-ca)"
                    : "the daemon's certificate is not signed by a CA this system trusts (set "
                      "--builder-tls-ca)";
    default:
      return std::string("the daemon's certificate is not valid: ") +
             ::X509_verify_cert_error_string(verify);
  }
}

}  // namespace

// ---- dial --------------------------------------------------------------------

Result<std::unique_ptr<TlsTunnel>> TlsTunnel::dial(const TcpTarget& target,
                                                   const TlsSettings& settings,
                                                   std::chrono::milliseconds deadline,
                                                   const std::function<bool()>& cancelled) {
  auto state = std::make_shared<State>();
  const auto end = Clock::now() + deadline;
  SSL_CTX* ctx = state->context.native_handle();
  ::SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  error_code ec;
  if (settings.ca_pem.empty()) {
    state->context.set_default_verify_paths(ec);
    if (ec) return setup_error("cannot load the system's CA certificates", ec);
  } else {
    state->context.add_certificate_authority(asio::buffer(settings.ca_pem), ec);
    if (ec) return setup_error("tls-ca holds no usable certificate", ec);
  }
  state->context.set_verify_mode(ssl::verify_peer);
  state->context.set_verify_callback(
      [raw = state.get()](bool preverified, ssl::verify_context& verify) {
        X509_STORE_CTX* store = verify.native_handle();
        if (::X509_STORE_CTX_get_error_depth(store) == 0) {
          if (X509* leaf = ::X509_STORE_CTX_get_current_cert(store)) {
            raw->daemon_cert_has_san = ::X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1) >= 0;
          }
        }
        return preverified;  // OpenSSL's verdict stands; this only looks
      });
  if (!settings.cert_pem.empty()) {
    state->context.use_certificate_chain(asio::buffer(settings.cert_pem), ec);
    if (ec) return setup_error("tls-cert holds no usable certificate", ec);
    // No passphrase is ever asked for: OpenSSL's default would prompt on the
    // terminal, and wait there past any deadline.
    state->context.set_password_callback(
        [](std::size_t, ssl::context::password_purpose) { return std::string(); });
    state->context.use_private_key(asio::buffer(settings.key_pem), ssl::context::pem, ec);
    if (ec && settings.key_pem.find("ENCRYPTED") != std::string::npos) {
      ::ERR_clear_error();
      return Error(Errc::invalid_argument,
                   "TLS setup failed: tls-key is encrypted with a passphrase, which envd does not "
                   "ask for: store the key without one (openssl pkey -in KEY -out PLAIN-KEY)");
    }
    if (ec) return setup_error("tls-key holds no usable private key", ec);
    if (::SSL_CTX_check_private_key(ctx) != 1) {
      ::ERR_clear_error();
      return Error(Errc::invalid_argument,
                   "TLS setup failed: tls-key is not the private key of tls-cert");
    }
    state->sent_client_cert = true;
    state->client_cert_pem = settings.cert_pem;
  }

  // Resolve (names only; literals need no lookup).
  std::vector<tcp::endpoint> endpoints;
  if (is_ip(target.host)) {
    endpoints.emplace_back(asio::ip::make_address(target.host), target.port);
  } else {
    tcp::resolver resolver(state->io);
    tcp::resolver::results_type results;
    auto [rec, expired] = run_step(
        state->io, end, cancelled,
        [&](auto done) {
          resolver.async_resolve(target.host, std::to_string(target.port),
                                 [&, done](const error_code& e, tcp::resolver::results_type r) {
                                   results = std::move(r);
                                   done(e);
                                 });
        },
        [&] { resolver.cancel(); });
    if (expired) {
      return Error(Errc::timeout,
                   "cannot resolve '" + target.host + "' within " + format_duration(deadline));
    }
    if (rec) {
      return Error(Errc::unavailable,
                   "cannot resolve '" + target.host + "' (DNS: " + rec.message() + ")");
    }
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }

  // Connect.
  state->tls.emplace(state->io, state->context);
  tcp::socket& socket = state->tls->next_layer();
  {
    auto [cec, expired] = run_step(
        state->io, end, cancelled,
        [&](auto done) {
          asio::async_connect(socket, endpoints,
                              [done](const error_code& e, const tcp::endpoint&) { done(e); });
        },
        [&] {
          error_code ignored;
          socket.close(ignored);
        });
    if (cancelled()) return Error(Errc::cancelled, "cancelled");
    if (expired) {
      return Error(Errc::timeout, "no answer within " + format_duration(deadline));
    }
    if (cec == asio::error::connection_refused) {
      return Error(Errc::unavailable, "connection refused");
    }
    if (cec) return Error(Errc::unavailable, cec.message());
  }
  socket.set_option(tcp::no_delay(true), ec);

  // Handshake: SNI for names, the name or IP checked by OpenSSL, "h2" offered.
  SSL* ssl_handle = state->tls->native_handle();
  const std::string name = settings.server_name.empty() ? target.host : settings.server_name;
  if (!is_ip(name)) ::SSL_set_tlsext_host_name(ssl_handle, name.c_str());
  X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl_handle);
  if (is_ip(name)) {
    ::X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  } else {
    // The name must be in a subjectAltName: no fallback to the Common Name.
    ::X509_VERIFY_PARAM_set_hostflags(
        param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    ::X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
  }
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  ::SSL_set_alpn_protos(ssl_handle, kAlpn, sizeof kAlpn);
  {
    auto [hec, expired] = run_step(
        state->io, end, cancelled,
        [&](auto done) {
          state->tls->async_handshake(ssl::stream_base::client,
                                      [done](const error_code& e) { done(e); });
        },
        [&] {
          error_code ignored;
          socket.close(ignored);
        });
    if (cancelled()) return Error(Errc::cancelled, "cancelled");
    if (expired) {
      return Error(Errc::timeout,
                   "the daemon accepted the connection but did not complete the TLS handshake "
                   "within " +
                       format_duration(deadline));
    }
    if (hec) {
      long verify = ::SSL_get_verify_result(ssl_handle);
      std::string cause;
      if (reason_code(hec) == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK) {
        cause = verify_cause(verify, name, !settings.ca_pem.empty(), state->daemon_cert_has_san);
      } else if (std::string alert =
                     alert_cause(hec, state->sent_client_cert, state->client_cert_pem);
                 !alert.empty()) {
        cause = alert;
      } else if (is_eof(hec)) {
        cause = "the daemon closed the connection during the handshake (is it a TLS port?)";
      } else {
        cause = ssl_reason(hec);
      }
      return Error(Errc::unavailable, kHandshakeFailed + cause);
    }
  }
  const unsigned char* selected = nullptr;
  unsigned int selected_size = 0;
  ::SSL_get0_alpn_selected(ssl_handle, &selected, &selected_size);
  std::string protocol(reinterpret_cast<const char*>(selected), selected_size);
  // buildkitd selects nothing; a gRPC-aware proxy selects h2. Anything else
  // would not carry HTTP/2.
  if (!protocol.empty() && protocol != "h2") {
    return Error(Errc::unavailable, std::string(kHandshakeFailed) +
                                        "the daemon chose the protocol '" + protocol +
                                        "' (by ALPN), not HTTP/2: it is not a BuildKit address");
  }

  // The plaintext side for gRPC, and the relay.
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return Error(Errc::internal,
                 std::string("cannot create a socketpair: ") + std::strerror(errno));
  }
  state->grpc_fd = ends[1];
  ::fcntl(ends[1], F_SETFL, ::fcntl(ends[1], F_GETFL, 0) | O_NONBLOCK);
  state->local.emplace(state->io);
  state->local->assign(asio::local::stream_protocol(), ends[0], ec);
  if (ec) {
    ::close(ends[0]);
    return Error(Errc::internal, "cannot use the socketpair: " + ec.message());
  }
  state->pump_up();
  state->pump_down();
  State* raw = state.get();
  state->io.restart();
  state->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<TlsTunnel>(new TlsTunnel(std::move(state)));
}

bool TlsTunnel::retryable(const Error& error) {
  // Only what a daemon that is still starting answers: nothing listens yet.
  return error.code() == Errc::unavailable && error.message() == "connection refused";
}

TlsTunnel::TlsTunnel(std::shared_ptr<State> state) : state_(std::move(state)) {}

TlsTunnel::~TlsTunnel() {
  State* raw = state_.get();
  asio::post(raw->io, [raw] { raw->close_all(); });
  if (raw->thread.joinable()) raw->thread.join();
}

int TlsTunnel::release_fd() { return std::exchange(state_->grpc_fd, -1); }

std::string TlsTunnel::failure() const {
  std::lock_guard lock(state_->mu);
  return state_->failure;
}

}  // namespace envd::buildkit
