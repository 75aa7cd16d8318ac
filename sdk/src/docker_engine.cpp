#include "envd/docker_engine.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include "envd/address.hpp"
#include "envd/host.hpp"
#include "envd/process.hpp"

namespace envd::sdk {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
// One socket type for unix and TCP endpoints.
using Generic = asio::generic::stream_protocol;
using Stream = beast::basic_stream<Generic, asio::any_io_executor, beast::unlimited_rate_policy>;
using beast::error_code;

constexpr const char* kDefaultHost = "unix:///var/run/docker.sock";
// The docker CLI's default when TLS is asked for and DOCKER_HOST is empty.
constexpr const char* kDefaultTlsHost = "tcp://localhost:2376";
constexpr uint16_t kDefaultTcpPort = 2375;
constexpr uint16_t kDefaultTlsPort = 2376;
constexpr std::size_t kRelayBuffer = std::size_t{16} * 1024;
constexpr std::size_t kMaxHeadBytes = std::size_t{64} * 1024;
constexpr std::size_t kStreamBuffer = std::size_t{64} * 1024;

std::string lower_first(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string tcp_url(const std::string& host, uint16_t port) {
  HostKind kind = is_ipv6(host) ? HostKind::ipv6 : HostKind::dns;
  return "tcp://" + HostPort{host, port, kind}.to_string();
}

// The variable's value; "" when it is unset.
std::string env_value(const char* name) {
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
  return value != nullptr ? std::string(value) : std::string();
}

bool env_set(const char* name) { return !env_value(name).empty(); }

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Where the docker CLI looks for ca.pem, cert.pem and key.pem, and which
// variable said so (for messages).
std::pair<std::string, std::string> docker_cert_dir() {
  if (env_set("DOCKER_CERT_PATH")) return {env_value("DOCKER_CERT_PATH"), "DOCKER_CERT_PATH"};
  if (env_set("DOCKER_CONFIG")) return {env_value("DOCKER_CONFIG"), "DOCKER_CONFIG"};
  std::string home = env_value("HOME");
  if (home.empty()) {
    if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
      home = pw->pw_dir;
    }
  }
  return {home + "/.docker", "the default, ~/.docker"};
}

// OpenSSL's reason for a TLS error code of Asio, e.g. "wrong version number".
std::string ssl_reason(const beast::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    if (const char* reason = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
      return reason;
    }
  }
  return lower_first(ec.message());
}

Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const DockerTls& tls) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  // The docker CLI's minimum too.
  ::SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  if (tls.verify) {
    context->load_verify_file(tls.ca_file, ec);
    if (ec) {
      return Error(Errc::invalid_argument, "cannot use the Docker TLS CA certificate '" +
                                               tls.ca_file + "': " + ssl_reason(ec));
    }
    context->set_verify_mode(asio::ssl::verify_peer);
  } else {
    context->set_verify_mode(asio::ssl::verify_none);
  }
  if (!tls.cert_file.empty()) {
    context->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) {
      return Error(Errc::invalid_argument, "cannot use the Docker TLS client certificate '" +
                                               tls.cert_file + "': " + ssl_reason(ec));
    }
    context->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    if (ec && ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
      return Error(Errc::invalid_argument, "the Docker TLS client key '" + tls.key_file +
                                               "' does not belong to the certificate '" +
                                               tls.cert_file + "'");
    }
    if (ec) {
      return Error(Errc::invalid_argument, "cannot use the Docker TLS client key '" + tls.key_file +
                                               "': " + ssl_reason(ec) +
                                               " (it must be an unencrypted PEM key)");
    }
    if (::SSL_CTX_check_private_key(context->native_handle()) != 1) {
      ::ERR_clear_error();
      return Error(Errc::invalid_argument, "the Docker TLS client key '" + tls.key_file +
                                               "' does not belong to the certificate '" +
                                               tls.cert_file + "'");
    }
  }
  return context;
}

// "1.41" -> {1, 41}; nullopt if it is not <number>.<number>.
std::optional<std::pair<int, int>> parse_api_version(std::string_view text) {
  auto dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == text.size()) return std::nullopt;
  int parts[2] = {0, 0};
  std::string_view pieces[2] = {text.substr(0, dot), text.substr(dot + 1)};
  for (int i = 0; i < 2; ++i) {
    if (pieces[i].size() > 4) return std::nullopt;
    for (char c : pieces[i]) {
      if (c < '0' || c > '9') return std::nullopt;
      parts[i] = parts[i] * 10 + (c - '0');
    }
  }
  return std::pair{parts[0], parts[1]};
}

Errc code_for_status(int status) {
  switch (status) {
    case 400:
      return Errc::invalid_argument;
    case 401:
    case 403:
      return Errc::permission;
    case 404:
      return Errc::not_found;
    case 409:
      return Errc::already_exists;
    default:
      return Errc::internal;
  }
}

// The daemon's explanation of a failed call: the "message" of its JSON error
// body, else the body itself, else the HTTP status.
std::string daemon_message(int status, std::string_view body) {
  error_code ec;
  auto value = boost::json::parse(body, ec);
  if (!ec && value.is_object()) {
    if (auto* message = value.as_object().if_contains("message"); message && message->is_string())
      return std::string(message->as_string());
  }
  std::string text(body);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.empty()) return "HTTP status " + std::to_string(status);
  return text;
}

// The Error a non-2xx answer of the Engine at `url` stands for.
Error answer_error(const std::string& url, int status, std::string_view body) {
  return Error(code_for_status(status),
               "docker engine at " + url + ": " + daemon_message(status, body));
}

// Delivers streamed data to the caller's callback, whole lines or raw pieces.
class Delivery {
 public:
  Delivery(StreamMode mode, const EngineDataCallback& callback)
      : mode_(mode), callback_(callback) {}

  bool put(std::string_view data) {
    if (data.empty()) return true;
    if (mode_ == StreamMode::chunks) return callback_(data);
    pending_.append(data);
    std::size_t start = 0;
    for (auto nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n', start)) {
      std::string_view line(pending_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      start = nl + 1;
      if (!callback_(line)) return false;
    }
    pending_.erase(0, start);
    return true;
  }

  bool finish() {
    if (mode_ == StreamMode::chunks || pending_.empty()) return true;
    std::string rest = std::move(pending_);
    pending_.clear();
    return callback_(rest);
  }

 private:
  StreamMode mode_;
  const EngineDataCallback& callback_;
  std::string pending_;
};

}  // namespace

Deadline deadline_after(std::chrono::milliseconds timeout) {
  return std::chrono::steady_clock::now() + timeout;
}

Result<DockerEndpoint> parse_docker_host(std::string_view docker_host) {
  std::string_view text = docker_host.empty() ? std::string_view(kDefaultHost) : docker_host;
  const std::string expected = "unix:///path/to/docker.sock or tcp://host[:port]";
  auto scheme = scheme_of(text);
  if (scheme.empty()) {
    return Error(Errc::invalid_argument, "DOCKER_HOST '" + std::string(text) +
                                             "' is invalid: it has no scheme; expected " +
                                             expected);
  }
  if (scheme != "unix" && scheme != "tcp" && scheme != "ssh") {
    return Error(Errc::unsupported, "DOCKER_HOST '" + std::string(text) + "' uses " + scheme +
                                        "://, which envd does not support: only unix://, tcp:// "
                                        "and ssh:// are (e.g. " +
                                        kDefaultHost + ")");
  }
  auto url = parse_url(text);
  if (url && scheme == "ssh") {
    if (!url->query.empty() || url->host.empty()) {
      return Error(Errc::invalid_argument,
                   "DOCKER_HOST '" + std::string(text) +
                       "' is invalid: ssh:// takes [user@]host[:port][/path/to/remote.sock]");
    }
    DockerEndpoint endpoint;
    endpoint.tcp_host = url->host;
    endpoint.tcp_port = url->port.value_or(0);  // 0: ssh's own default
    if (url->path == "/") url->path.clear();
    endpoint.url = url->to_string();
    return endpoint;
  }
  if (url && scheme == "tcp") {
    if ((!url->path.empty() && url->path != "/") || !url->query.empty() || !url->user.empty()) {
      return Error(Errc::invalid_argument,
                   "DOCKER_HOST '" + std::string(text) +
                       "' is invalid: tcp:// takes only host[:port]; expected " + expected);
    }
    DockerEndpoint endpoint;
    endpoint.tcp_host = url->host;
    endpoint.tcp_port = url->port.value_or(kDefaultTcpPort);
    endpoint.url = tcp_url(endpoint.tcp_host, endpoint.tcp_port);
    return endpoint;
  }
  if (!url) {
    return Error(Errc::invalid_argument, "DOCKER_HOST '" + std::string(text) + "' is invalid: " +
                                             url.error().message() + "; expected " + expected);
  }
  if (url->path.empty() || !url->query.empty()) {
    return Error(Errc::invalid_argument, "DOCKER_HOST '" + std::string(text) +
                                             "' is invalid: it names no socket path; expected " +
                                             expected);
  }
  if (url->path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Error(Errc::invalid_argument, "DOCKER_HOST '" + std::string(text) +
                                             "' is invalid: the socket path is longer than " +
                                             std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                             " bytes");
  }
  DockerEndpoint endpoint;
  endpoint.url = "unix://" + url->path;
  endpoint.socket_path = url->path;
  return endpoint;
}

Result<DockerSettings> docker_settings_from_env() {
  const bool verify = env_set("DOCKER_TLS_VERIFY");
  const bool tls = verify || env_set("DOCKER_TLS");
  std::string host = env_value("DOCKER_HOST");
  if (host.empty() && tls) host = kDefaultTlsHost;
  auto endpoint = parse_docker_host(host);
  if (!endpoint) return endpoint.error();
  DockerSettings settings{std::move(*endpoint), std::nullopt};
  if (!tls || settings.endpoint.url.rfind("tcp://", 0) != 0) return settings;
  auto& ep = settings.endpoint;
  if (auto url = parse_url(host); url && !url->port) {
    ep.tcp_port = kDefaultTlsPort;
    ep.url = tcp_url(ep.tcp_host, ep.tcp_port);
  }
  const std::string variable = verify ? "DOCKER_TLS_VERIFY" : "DOCKER_TLS";
  auto [dir, from] = docker_cert_dir();
  DockerTls t;
  t.verify = verify;
  if (verify) {
    t.ca_file = dir + "/ca.pem";
    if (!file_exists(t.ca_file)) {
      return Error(Errc::not_found,
                   "DOCKER_TLS_VERIFY is set, but the CA certificate '" + t.ca_file +
                       "' does not exist (" +
                       (from == "DOCKER_CERT_PATH"
                            ? std::string("DOCKER_CERT_PATH names the directory of ca.pem, "
                                          "cert.pem and key.pem)")
                            : "the directory is " + from +
                                  "; set DOCKER_CERT_PATH to the directory of ca.pem, cert.pem "
                                  "and key.pem)"));
    }
  }
  std::string cert = dir + "/cert.pem";
  std::string key = dir + "/key.pem";
  bool has_cert = file_exists(cert);
  bool has_key = file_exists(key);
  if (has_cert != has_key) {
    return Error(Errc::invalid_argument,
                 variable + " is set and '" + (has_cert ? cert : key) + "' exists, but '" +
                     (has_cert ? key : cert) +
                     "' does not: a client certificate needs both cert.pem and key.pem");
  }
  if (has_cert) {
    t.cert_file = std::move(cert);
    t.key_file = std::move(key);
  }
  settings.tls = std::move(t);
  return settings;
}

bool is_docker_container_name(std::string_view name) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  return name.size() >= 2 && alnum(name.front()) &&
         std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

EngineBodySource body_from_fd(int fd) {
  return [fd](char* buffer, std::size_t capacity) -> Result<std::size_t> {
    for (;;) {
      ssize_t n = ::read(fd, buffer, capacity);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      return Error(Errc::internal,
                   std::string("cannot read the request body: ") + std::strerror(errno));
    }
  };
}

// The ssh process behind an ssh:// connection: a thread collects what it
// writes to stderr and reaps it when it ends (which, for a hijacked
// connection, is when the caller closes its fd and ssh reads EOF).
class SshProcess : public std::enable_shared_from_this<SshProcess> {
 public:
  void watch(pid_t pid, int stderr_fd) {
    std::thread([self = shared_from_this(), pid, stderr_fd] {
      char buf[1024];
      for (;;) {
        ssize_t n = ::read(stderr_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        std::lock_guard lock(self->mutex_);
        if (self->err_.size() < 16384) self->err_.append(buf, static_cast<std::size_t>(n));
      }
      ::close(stderr_fd);
      auto code = wait_process(pid);
      std::lock_guard lock(self->mutex_);
      self->exit_code_ = code ? *code : -1;
      self->done_ = true;
      self->ended_.notify_all();
    }).detach();
  }

  // Why the connection ended: ssh's last stderr line, or its exit code; ""
  // if ssh is still running after `wait`.
  std::string why(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    if (!ended_.wait_for(lock, wait, [&] { return done_; })) return "";
    std::string text = err_;
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    if (auto nl = text.rfind('\n'); nl != std::string::npos) text.erase(0, nl + 1);
    if (!text.empty()) return text;
    return "ssh exited with " + std::to_string(exit_code_);
  }

 private:
  std::mutex mutex_;
  std::condition_variable ended_;
  std::string err_;
  int exit_code_ = -1;
  bool done_ = false;
};

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

  Status connect() {
    if (endpoint_.url.rfind("ssh://", 0) == 0) return connect_ssh();
    Status connected = endpoint_.socket_path.empty() ? connect_tcp() : connect_unix();
    if (!connected || !tls_setup_) return connected;
    return handshake();
  }

  bool is_tls() const { return tls_.has_value(); }

  // ssh://: as the docker CLI does, `ssh ... -- host docker system dial-stdio`
  // with its stdin and stdout on one end of a socketpair, HTTP on the other.
  // BatchMode: a password prompt cannot be answered in a build; keys and
  // agents (and ~/.ssh/config) work as for any ssh.
  Status connect_ssh() {
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
    int err[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
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
    ssh_->watch(*pid, err[0]);
    error_code ec;
    stream_.socket().assign(Generic(AF_UNIX, 0), ends[0], ec);
    if (ec) {
      ::close(ends[0]);
      return Error(Errc::internal, "cannot use the ssh socketpair: " + ec.message());
    }
    return {};
  }

  Status connect_unix() {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, endpoint_.socket_path.data(), endpoint_.socket_path.size());
    return connect_to(AF_UNIX, 0, &address, sizeof address);
  }

  // Client side of the TLS handshake; the daemon's name is checked by OpenSSL
  // itself (host name or IP address) so that a mismatch has its own verify code.
  Status handshake() {
    tls_.emplace(stream_, *tls_setup_->context);
    SSL* ssl = tls_->native_handle();
    const std::string& host = endpoint_.tcp_host;
    const bool ip = is_ipv4(host) || is_ipv6(host);
    // SNI carries DNS names only (RFC 6066).
    if (!ip) ::SSL_set_tlsext_host_name(ssl, host.c_str());
    if (tls_setup_->settings.verify) {
      X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl);
      int ok = ip ? ::X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                  : ::X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
      if (ok != 1) {
        return Error(Errc::internal, "cannot check the Docker Engine's name '" + host + "'");
      }
    }
    auto ec = run([&](auto handler) {
      tls_->async_handshake(asio::ssl::stream_base::client,
                            [handler](error_code e) mutable { handler(e, 0); });
    });
    if (!ec) return {};
    if (cancelled_) return cancelled_error("connecting to the Docker Engine at " + endpoint_.url);
    if (ec == beast::error::timeout) {
      return Error(Errc::timeout, "cannot connect to the Docker Engine at " + endpoint_.url +
                                      " over TLS: the deadline passed during the handshake");
    }
    return tls_error(ec);
  }

  // Why TLS failed, from OpenSSL's verify result or the alert the daemon sent.
  Error tls_error(error_code ec) {
    const DockerTls& settings = tls_setup_->settings;
    const bool has_cert = !settings.cert_file.empty();
    std::string why;
    long verify = tls_ ? ::SSL_get_verify_result(tls_->native_handle()) : X509_V_OK;
    if (verify != X509_V_OK) {
      switch (verify) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
          why = "its certificate is not valid for '" + endpoint_.tcp_host + "'";
          break;
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
          why = "its certificate is not signed by the CA in '" + settings.ca_file + "'";
          break;
        default:
          why = std::string("its certificate was rejected: ") +
                ::X509_verify_cert_error_string(verify);
      }
    } else if (ec.category() == asio::error::get_ssl_category()) {
      switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_HTTP_REQUEST:
          why =
              "it does not speak TLS on this port (for a plain-TCP Engine unset "
              "DOCKER_TLS_VERIFY and DOCKER_TLS)";
          break;
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
          why = has_cert ? "it rejected the client certificate '" + settings.cert_file + "' (" +
                               ssl_reason(ec) + ")"
                         : "it requires a client certificate (" + ssl_reason(ec) +
                               "): put cert.pem and key.pem in the DOCKER_CERT_PATH directory";
          break;
        default:
          why = "TLS failed: " + ssl_reason(ec);
      }
    } else {
      why = "it closed the connection during the TLS handshake (" + lower_first(ec.message()) + ")";
    }
    return Error(Errc::unavailable,
                 "cannot connect to the Docker Engine at " + endpoint_.url + " over TLS: " + why);
  }

  // Tries every address the host resolves to, as the docker CLI does. Name
  // resolution (getaddrinfo) does not honour the deadline.
  Status connect_tcp() {
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
    Status last = Error(Errc::unavailable, "cannot connect to the Docker Engine at " +
                                               endpoint_.url + ": the host has no address");
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

  Status connect_to(int family, int protocol, const void* address, std::size_t length) {
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
  template <typename Start>
  error_code run(Start&& start) {
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

  // The error for a failed read or write during `what` (e.g. "GET /version").
  Error io_error(error_code ec, std::string_view what) {
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
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
      return Error(Errc::internal, "the Docker Engine at " + endpoint_.url +
                                       " sent an invalid HTTP answer to " + std::string(what) +
                                       ": " + ec.message());
    }
    return Error(Errc::unavailable, "cannot talk to the Docker Engine at " + endpoint_.url + " (" +
                                        std::string(what) + "): " + ec.message());
  }

  Error status_error(int status, std::string_view body) const {
    return answer_error(endpoint_.url, status, body);
  }

  template <typename Body>
  void prepare(http::request<Body>& req, std::string_view method, const std::string& target) {
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "docker");
    req.set(http::field::user_agent, "envd");
  }

  // Writes a request with an optional JSON body; a non-empty `upgrade` asks
  // for Connection: Upgrade to that protocol.
  Status send(std::string_view method, const std::string& target, std::string_view body_json,
              const EngineHeaders& headers, std::string_view upgrade, std::string_view what) {
    http::request<http::string_body> req;
    prepare(req, method, target);
    for (const auto& [name, value] : headers) req.insert(name, value);
    if (!upgrade.empty()) {
      req.set(http::field::connection, "Upgrade");
      req.set(http::field::upgrade, upgrade);
    }
    if (!body_json.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::string(body_json);
    }
    req.prepare_payload();
    if (auto ec = io([&](auto& s, auto h) { http::async_write(s, req, std::move(h)); })) {
      return write_error(ec, what);
    }
    return {};
  }

  // A failed write. A TLS daemon that refused the client certificate after
  // the handshake has sent an alert and closed, so the write meets a reset;
  // the alert, still in the receive queue, says why.
  Error write_error(error_code ec, std::string_view what) {
    if (tls_ && (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)) {
      char byte = 0;
      auto alert =
          run([&](auto h) { tls_->async_read_some(asio::buffer(&byte, 1), std::move(h)); });
      if (alert.category() == asio::error::get_ssl_category()) return tls_error(alert);
    }
    return io_error(ec, what);
  }

  Result<EngineResponse> exchange(std::string_view method, const std::string& target,
                                  std::string_view body_json, const EngineHeaders& headers,
                                  std::string_view what, std::string* api_version = nullptr) {
    if (auto sent = send(method, target, body_json, headers, "", what); !sent) {
      return sent.error();
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (auto ec =
            io([&](auto& s, auto h) { http::async_read(s, buffer_, parser, std::move(h)); })) {
      return io_error(ec, what);
    }
    auto& res = parser.get();
    if (api_version) *api_version = std::string(res["Api-Version"]);
    return EngineResponse{static_cast<int>(res.result_int()), std::move(res.body())};
  }

  // Reads a response and streams a 2xx body to `delivery`.
  Result<int> read_streamed(Delivery& delivery, std::string_view what) {
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (auto ec = io(
            [&](auto& s, auto h) { http::async_read_header(s, buffer_, parser, std::move(h)); })) {
      return io_error(ec, what);
    }
    int status = static_cast<int>(parser.get().result_int());
    if (status < 200 || status > 299) {
      http::response_parser<http::string_body> whole(std::move(parser));
      if (!whole.is_done()) {
        if (auto ec =
                io([&](auto& s, auto h) { http::async_read(s, buffer_, whole, std::move(h)); })) {
          return io_error(ec, what);
        }
      }
      return status_error(status, whole.get().body());
    }
    std::vector<char> chunk(kStreamBuffer);
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto ec = io([&](auto& s, auto h) { http::async_read(s, buffer_, parser, std::move(h)); });
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return io_error(ec, what);
      std::size_t n = chunk.size() - parser.get().body().size;
      if (!delivery.put(std::string_view(chunk.data(), n))) return cancelled(what);
    }
    if (!delivery.finish()) return cancelled(what);
    return status;
  }

  Result<int> stream(std::string_view method, const std::string& target, std::string_view body_json,
                     const EngineHeaders& headers, Delivery& delivery, std::string_view what) {
    if (auto sent = send(method, target, body_json, headers, "", what); !sent) {
      return sent.error();
    }
    return read_streamed(delivery, what);
  }

  Result<int> upload(std::string_view method, const std::string& target,
                     std::string_view content_type, const EngineBodySource& source,
                     Delivery& delivery, std::string_view what) {
    http::request<http::buffer_body> req;
    prepare(req, method, target);
    req.set(http::field::content_type, content_type);
    req.chunked(true);
    req.body().data = nullptr;
    req.body().more = true;
    http::request_serializer<http::buffer_body> serializer(req);
    auto ec = io([&](auto& s, auto h) { http::async_write_header(s, serializer, std::move(h)); });
    std::vector<char> chunk(kStreamBuffer);
    while (!ec) {
      auto n = source(chunk.data(), chunk.size());
      if (!n) return n.error();
      req.body().data = *n ? chunk.data() : nullptr;
      req.body().size = *n;
      req.body().more = *n != 0;
      ec = io([&](auto& s, auto h) { http::async_write(s, serializer, std::move(h)); });
      if (ec == http::error::need_buffer) ec = {};
      if (*n == 0) break;
    }
    if (ec) {
      // The daemon may have refused the body early; its answer says why.
      if (ec != beast::error::timeout && stream_.socket().is_open()) {
        auto answer = read_streamed(delivery, what);
        if (!answer) return answer.error();
      }
      return io_error(ec, what);
    }
    return read_streamed(delivery, what);
  }

  // Sends an upgrade request and reads the answer's head; on 101/200 the
  // connection is left with nothing of the upgraded protocol consumed.
  Status hijack(std::string_view method, const std::string& target, std::string_view body_json,
                const EngineHeaders& headers, std::string_view protocol, std::string_view what) {
    if (auto sent = send(method, target, body_json, headers, protocol, what); !sent) {
      return sent.error();
    }
    // The head is read a byte at a time: everything after its blank line
    // belongs to the upgraded protocol and must stay in the socket.
    std::string head;
    char byte = 0;
    while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
      if (head.size() >= kMaxHeadBytes) {
        return Error(Errc::internal, "the Docker Engine at " + endpoint_.url +
                                         " sent a response head over 64 KiB to " +
                                         std::string(what));
      }
      auto ec =
          io([&](auto& s, auto h) { s.async_read_some(asio::buffer(&byte, 1), std::move(h)); });
      if (ec) return io_error(ec, what);
      head.push_back(byte);
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.eager(false);
    error_code ec;
    parser.put(asio::buffer(head), ec);
    if (ec && ec != http::error::need_more) return io_error(ec, what);
    if (!parser.is_header_done()) return io_error(http::error::partial_message, what);
    int status = static_cast<int>(parser.get().result_int());
    if (status == 101 || status == 200) return {};
    if (!parser.is_done()) {
      if (auto e =
              io([&](auto& s, auto h) { http::async_read(s, buffer_, parser, std::move(h)); })) {
        return io_error(e, what);
      }
    }
    return status_error(status, parser.get().body());
  }

  // After a plain hijack(): the socket itself, blocking, owned by the caller.
  // Nothing may be buffered: the parser was only ever given the head.
  Result<int> take_socket() {
    stream_.expires_never();
    error_code ec;
    auto socket = stream_.release_socket();
    int fd = socket.release(ec);
    if (ec) return Error(Errc::internal, "cannot take over the hijacked socket: " + ec.message());
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
      int saved = errno;
      ::close(fd);
      return Error(Errc::internal, std::string("cannot make the hijacked socket blocking: ") +
                                       std::strerror(saved));
    }
    return fd;
  }

  // After a TLS hijack(): copies bytes between the TLS connection and `local`
  // (our end of a socketpair) until both directions ended. End of input on one
  // side is passed on as a write shutdown of the other, so a caller's
  // shutdown(SHUT_WR) reaches the daemon as the end of its stdin. Takes `local`.
  void relay(int local) {
    stream_.expires_never();
    asio::local::stream_protocol::socket peer(ioc_);
    error_code ec;
    peer.assign(asio::local::stream_protocol(), local, ec);
    if (ec) {
      ::close(local);
      return;
    }
    Relay relay{*tls_, stream_, peer};
    relay.to_daemon();
    relay.to_caller();
    ioc_.restart();
    ioc_.run();
  }

 private:
  Error cancelled(std::string_view what) const {
    return Error(Errc::cancelled, "reading the answer of the Docker Engine at " + endpoint_.url +
                                      " to " + std::string(what) + " was stopped by the caller");
  }

  using TlsStream = asio::ssl::stream<Stream&>;

  // The two copy loops of relay(), on one thread.
  struct Relay {
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

  DockerEndpoint endpoint_;
  std::optional<TlsSetup> tls_setup_;
  Deadline deadline_;
  bool cancelled_ = false;  // the host cancelled an operation of this connection
  asio::io_context ioc_{1};
  Stream stream_{ioc_};
  std::optional<TlsStream> tls_;     // after stream_: it refers to it
  std::shared_ptr<SshProcess> ssh_;  // ssh:// only
  beast::flat_buffer buffer_;
};

// Hands a hijacked TLS connection to a relay thread and returns the caller's
// end of the socketpair (blocking, close-on-exec).
Result<int> start_tls_relay(std::unique_ptr<Connection> connection) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return Error(Errc::internal, std::string("cannot create a socketpair for the TLS relay: ") +
                                     std::strerror(errno));
  }
  try {
    std::thread([c = std::move(connection), theirs = ends[1]]() { c->relay(theirs); }).detach();
  } catch (const std::system_error& e) {
    ::close(ends[0]);
    ::close(ends[1]);
    return Error(Errc::internal, std::string("cannot start the TLS relay thread: ") + e.what());
  }
  return ends[0];
}

struct DockerEngine::Impl {
  DockerEndpoint endpoint;
  std::optional<DockerTls> tls;  // tcp:// endpoints only
  std::mutex mutex;
  std::string version;                              // negotiated; empty until the first call
  std::shared_ptr<asio::ssl::context> tls_context;  // made on first use

  // A connected connection (TLS handshake done) for one call.
  Result<std::unique_ptr<Connection>> connect(Deadline deadline) {
    std::optional<TlsSetup> setup;
    if (tls) {
      std::lock_guard lock(mutex);
      if (!tls_context) {
        auto made = make_tls_context(*tls);
        if (!made) return made.error();
        tls_context = std::move(*made);
      }
      setup = TlsSetup{*tls, tls_context};
    }
    auto connection = std::make_unique<Connection>(endpoint, std::move(setup), deadline);
    if (auto st = connection->connect(); !st) return st.error();
    return connection;
  }

  std::string what(std::string_view method, std::string_view path) const {
    return std::string(method) + " " + std::string(path);
  }

  struct Opened {
    std::string target;
    std::unique_ptr<Connection> connection;
  };

  // Negotiates the version if needed and connects, for one call on `path`.
  Result<Opened> open(std::string_view path, Deadline deadline) {
    auto versioned = target(path, deadline);
    if (!versioned) return versioned.error();
    auto connection = connect(deadline);
    if (!connection) return connection.error();
    return Opened{std::move(*versioned), std::move(*connection)};
  }

  Result<std::string> target(std::string_view path, Deadline deadline) {
    auto version_used = negotiate(deadline);
    if (!version_used) return version_used.error();
    return "/v" + *version_used + std::string(path);
  }

  Result<std::string> negotiate(Deadline deadline) {
    {
      std::lock_guard lock(mutex);
      if (!version.empty()) return version;
    }
    auto connection = connect(deadline);
    if (!connection) return connection.error();
    std::string daemon_version;
    auto answer = (*connection)->exchange("GET", "/_ping", "", {}, "GET /_ping", &daemon_version);
    if (!answer) return answer.error();
    if (answer->status != 200) return (*connection)->status_error(answer->status, answer->body);
    std::string chosen = DockerEngine::client_api_version;
    // A daemon that does not say (very old ones) gets our version and will
    // refuse it clearly if it is too new.
    auto theirs = parse_api_version(daemon_version);
    if (theirs && *theirs < *parse_api_version(chosen)) chosen = daemon_version;
    std::lock_guard lock(mutex);
    version = chosen;
    return version;
  }
};

DockerEngine::DockerEngine(DockerEndpoint endpoint) : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = std::move(endpoint);
}
DockerEngine::DockerEngine(DockerEndpoint endpoint, DockerTls tls)
    : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = std::move(endpoint);
  if (impl_->endpoint.url.rfind("tcp://", 0) == 0) impl_->tls = std::move(tls);
}
DockerEngine::DockerEngine(DockerEngine&&) noexcept = default;
DockerEngine& DockerEngine::operator=(DockerEngine&&) noexcept = default;
DockerEngine::~DockerEngine() = default;

Result<DockerEngine> DockerEngine::from_env() {
  auto settings = docker_settings_from_env();
  if (!settings) return settings.error();
  if (settings->tls) return DockerEngine(std::move(settings->endpoint), std::move(*settings->tls));
  return DockerEngine(std::move(settings->endpoint));
}

const DockerEndpoint& DockerEngine::endpoint() const { return impl_->endpoint; }

const DockerTls* DockerEngine::tls() const { return impl_->tls ? &*impl_->tls : nullptr; }

Error DockerEngine::status_error(const EngineResponse& answer) const {
  return answer_error(impl_->endpoint.url, answer.status, answer.body);
}

Result<std::string> DockerEngine::api_version(Deadline deadline) {
  return impl_->negotiate(deadline);
}

Result<EngineVersion> DockerEngine::version(Deadline deadline) {
  auto body = call("GET", "/version", "", deadline);
  if (!body) return body.error();
  error_code ec;
  auto value = boost::json::parse(*body, ec);
  if (ec || !value.is_object()) {
    return Error(Errc::internal, "the Docker Engine at " + impl_->endpoint.url +
                                     " answered GET /version with something other than a JSON "
                                     "object");
  }
  auto field = [&](std::string_view key) {
    auto* v = value.as_object().if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  return EngineVersion{field("Version"), field("ApiVersion"), field("Os"), field("Arch")};
}

Result<EngineResponse> DockerEngine::request(std::string_view method, std::string_view path,
                                             std::string_view body_json, Deadline deadline) {
  auto opened = impl_->open(path, deadline);
  if (!opened) return opened.error();
  auto& [target, connection] = *opened;
  return connection->exchange(method, target, body_json, {}, impl_->what(method, path));
}

Result<std::string> DockerEngine::call(std::string_view method, std::string_view path,
                                       std::string_view body_json, Deadline deadline) {
  auto opened = impl_->open(path, deadline);
  if (!opened) return opened.error();
  auto& [target, connection] = *opened;
  auto answer = connection->exchange(method, target, body_json, {}, impl_->what(method, path));
  if (!answer) return answer.error();
  if (answer->status < 200 || answer->status > 299)
    return connection->status_error(answer->status, answer->body);
  return std::move(answer->body);
}

Result<int> DockerEngine::stream(std::string_view method, std::string_view path,
                                 std::string_view body_json, const EngineHeaders& headers,
                                 StreamMode mode, const EngineDataCallback& on_data,
                                 Deadline deadline) {
  auto opened = impl_->open(path, deadline);
  if (!opened) return opened.error();
  auto& [target, connection] = *opened;
  Delivery delivery(mode, on_data);
  return connection->stream(method, target, body_json, headers, delivery,
                            impl_->what(method, path));
}

Result<int> DockerEngine::upload(std::string_view method, std::string_view path,
                                 std::string_view content_type, const EngineBodySource& body,
                                 StreamMode mode, const EngineDataCallback& on_data,
                                 Deadline deadline) {
  auto opened = impl_->open(path, deadline);
  if (!opened) return opened.error();
  auto& [target, connection] = *opened;
  Delivery delivery(mode, on_data);
  return connection->upload(method, target, content_type, body, delivery,
                            impl_->what(method, path));
}

Result<int> DockerEngine::hijack(std::string_view method, std::string_view path,
                                 std::string_view body_json, const EngineHeaders& headers,
                                 std::string_view upgrade_protocol, Deadline deadline) {
  auto opened = impl_->open(path, deadline);
  if (!opened) return opened.error();
  auto& [target, connection] = *opened;
  if (auto st = connection->hijack(method, target, body_json, headers, upgrade_protocol,
                                   impl_->what(method, path));
      !st) {
    return st.error();
  }
  if (connection->is_tls()) return start_tls_relay(std::move(connection));
  return connection->take_socket();
}

}  // namespace envd::sdk
