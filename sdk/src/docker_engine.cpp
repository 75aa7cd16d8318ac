#include "envd/docker_engine.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>

#include "envd/address.hpp"

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
constexpr uint16_t kDefaultTcpPort = 2375;
constexpr std::size_t kMaxHeadBytes = std::size_t{64} * 1024;
constexpr std::size_t kStreamBuffer = std::size_t{64} * 1024;

std::string lower_first(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
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
  if (scheme != "unix" && scheme != "tcp") {
    return Error(Errc::unsupported, "DOCKER_HOST '" + std::string(text) + "' uses " + scheme +
                                        "://, which envd does not support yet: only unix:// "
                                        "sockets and plain tcp:// addresses are (e.g. " +
                                        kDefaultHost + ")");
  }
  auto url = parse_url(text);
  if (url && scheme == "tcp") {
    if ((!url->path.empty() && url->path != "/") || !url->query.empty() || !url->user.empty()) {
      return Error(Errc::invalid_argument,
                   "DOCKER_HOST '" + std::string(text) +
                       "' is invalid: tcp:// takes only host[:port]; expected " + expected);
    }
    DockerEndpoint endpoint;
    endpoint.tcp_host = url->host;
    endpoint.tcp_port = url->port.value_or(kDefaultTcpPort);
    HostKind kind = is_ipv6(endpoint.tcp_host) ? HostKind::ipv6 : HostKind::dns;
    endpoint.url = "tcp://" + HostPort{endpoint.tcp_host, endpoint.tcp_port, kind}.to_string();
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

// One connection to the engine, driven synchronously: each operation runs the
// private io_context until it completes or the deadline closes the socket.
class Connection {
 public:
  Connection(const DockerEndpoint& endpoint, Deadline deadline)
      : endpoint_(endpoint), deadline_(deadline) {}

  Status connect() {
    if (endpoint_.socket_path.empty()) return connect_tcp();
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, endpoint_.socket_path.data(), endpoint_.socket_path.size());
    return connect_to(AF_UNIX, 0, &address, sizeof address);
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
    Errc code = Errc::unavailable;
    if (ec == beast::error::timeout) code = Errc::timeout;
    if (ec == boost::system::errc::permission_denied) code = Errc::permission;
    return Error(code, "cannot connect to the Docker Engine at " + endpoint_.url + ": " +
                           (code == Errc::timeout ? "the deadline passed while connecting"
                                                  : lower_first(ec.message())));
  }

  // Runs one asynchronous operation started by `start(handler)` to completion.
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
    ioc_.run();
    if (!done) return asio::error::operation_aborted;
    return result;
  }

  // The error for a failed read or write during `what` (e.g. "GET /version").
  Error io_error(error_code ec, std::string_view what) const {
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
    return Error(code_for_status(status),
                 "docker engine at " + endpoint_.url + ": " + daemon_message(status, body));
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
    if (auto ec = run([&](auto h) { http::async_write(stream_, req, h); })) {
      return io_error(ec, what);
    }
    return {};
  }

  Result<EngineResponse> exchange(std::string_view method, const std::string& target,
                                  std::string_view body_json, const EngineHeaders& headers,
                                  std::string_view what, std::string* api_version = nullptr) {
    if (auto sent = send(method, target, body_json, headers, "", what); !sent) {
      return sent.error();
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (auto ec = run([&](auto h) { http::async_read(stream_, buffer_, parser, h); })) {
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
    if (auto ec = run([&](auto h) { http::async_read_header(stream_, buffer_, parser, h); })) {
      return io_error(ec, what);
    }
    int status = static_cast<int>(parser.get().result_int());
    if (status < 200 || status > 299) {
      http::response_parser<http::string_body> whole(std::move(parser));
      if (!whole.is_done()) {
        if (auto ec = run([&](auto h) { http::async_read(stream_, buffer_, whole, h); })) {
          return io_error(ec, what);
        }
      }
      return status_error(status, whole.get().body());
    }
    std::vector<char> chunk(kStreamBuffer);
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto ec = run([&](auto h) { http::async_read(stream_, buffer_, parser, h); });
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
    auto ec = run([&](auto h) { http::async_write_header(stream_, serializer, h); });
    std::vector<char> chunk(kStreamBuffer);
    while (!ec) {
      auto n = source(chunk.data(), chunk.size());
      if (!n) return n.error();
      req.body().data = *n ? chunk.data() : nullptr;
      req.body().size = *n;
      req.body().more = *n != 0;
      ec = run([&](auto h) { http::async_write(stream_, serializer, h); });
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

  Result<int> hijack(std::string_view method, const std::string& target, std::string_view body_json,
                     const EngineHeaders& headers, std::string_view protocol,
                     std::string_view what) {
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
      auto ec = run([&](auto h) { stream_.async_read_some(asio::buffer(&byte, 1), h); });
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
    if (status == 101 || status == 200) {
      // Nothing may be buffered: the parser was only ever given the head.
      stream_.expires_never();
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
    if (!parser.is_done()) {
      if (auto e = run([&](auto h) { http::async_read(stream_, buffer_, parser, h); })) {
        return io_error(e, what);
      }
    }
    return status_error(status, parser.get().body());
  }

 private:
  Error cancelled(std::string_view what) const {
    return Error(Errc::cancelled, "reading the answer of the Docker Engine at " + endpoint_.url +
                                      " to " + std::string(what) + " was stopped by the caller");
  }

  const DockerEndpoint& endpoint_;
  Deadline deadline_;
  asio::io_context ioc_{1};
  Stream stream_{ioc_};
  beast::flat_buffer buffer_;
};

struct DockerEngine::Impl {
  DockerEndpoint endpoint;
  std::mutex mutex;
  std::string version;  // negotiated; empty until the first call

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
    auto connection = std::make_unique<Connection>(endpoint, deadline);
    if (auto st = connection->connect(); !st) return st.error();
    return Opened{std::move(*versioned), std::move(connection)};
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
    Connection connection(endpoint, deadline);
    if (auto st = connection.connect(); !st) return st.error();
    std::string daemon_version;
    auto answer = connection.exchange("GET", "/_ping", "", {}, "GET /_ping", &daemon_version);
    if (!answer) return answer.error();
    if (answer->status != 200) return connection.status_error(answer->status, answer->body);
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
DockerEngine::DockerEngine(DockerEngine&&) noexcept = default;
DockerEngine& DockerEngine::operator=(DockerEngine&&) noexcept = default;
DockerEngine::~DockerEngine() = default;

Result<DockerEngine> DockerEngine::from_env() {
  for (const char* tls : {"DOCKER_TLS_VERIFY", "DOCKER_TLS"}) {
    if (const char* value = std::getenv(tls); value != nullptr && value[0] != '\0') {
      return Error(Errc::unsupported,
                   std::string(tls) +
                       " is set, but envd does not speak TLS to the Docker Engine yet: use a "
                       "unix:// socket or plain tcp:// (unset " +
                       tls + ")");
    }
  }
  const char* host = std::getenv("DOCKER_HOST");
  auto endpoint = parse_docker_host(host ? host : "");
  if (!endpoint) return endpoint.error();
  return DockerEngine(std::move(*endpoint));
}

const DockerEndpoint& DockerEngine::endpoint() const { return impl_->endpoint; }

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
  return connection->hijack(method, target, body_json, headers, upgrade_protocol,
                            impl_->what(method, path));
}

}  // namespace envd::sdk
