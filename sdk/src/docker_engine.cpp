// DockerEngine: the API version it negotiates and the calls it makes, each on
// a connection of its own (engine_connection.hpp says where the rest lives).
#include "envd/docker_engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <utility>

#include "engine_connection.hpp"
#include "envd/text.hpp"

namespace envd::sdk {
namespace {

using engine::Connection;
using engine::Delivery;
using engine::error_code;
using engine::TlsSetup;

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

}  // namespace

Deadline deadline_after(std::chrono::milliseconds timeout) {
  return std::chrono::steady_clock::now() + timeout;
}

std::string creation_token() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> byte(0, 255);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 16; ++i) {
    unsigned b = byte(device);
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  return token;
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

struct DockerEngine::Impl {
  DockerEndpoint endpoint;
  std::optional<DockerTls> tls;  // tcp:// endpoints only
  std::mutex mutex;
  std::string version;  // negotiated; empty until the first call
  std::shared_ptr<engine::asio::ssl::context> tls_context;  // made on first use

  // A connected connection (TLS handshake done) for one call.
  Result<std::unique_ptr<Connection>> connect(Deadline deadline) {
    std::optional<TlsSetup> setup;
    if (tls) {
      std::lock_guard lock(mutex);
      if (!tls_context) {
        auto made = engine::make_tls_context(*tls);
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
    // A space or a control character would end the request line, or start
    // a header of a caller's making: what goes into a path must be escaped
    // (or refused) by the caller, and reaching here is its bug.
    for (char c : path) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte <= 0x20 || byte == 0x7f) {
        return Error(Errc::invalid_argument, "refusing to send a request for '" +
                                                 printable(path, 200) +
                                                 "': a space or a control character in a URL path");
      }
    }
    auto version_used = negotiate(deadline);
    if (!version_used) return version_used.error();
    return "/v" + *version_used + std::string(path);
  }

  // Sends the upgrade request for `target` on `connection` and hands over the
  // socket (or, over TLS, a relayed end of a socketpair).
  Result<int> hijack(std::unique_ptr<Connection> connection, std::string_view method,
                     const std::string& target, std::string_view path, std::string_view body_json,
                     const EngineHeaders& headers, std::string_view upgrade_protocol) {
    if (auto st = connection->hijack(method, target, body_json, headers, upgrade_protocol,
                                     what(method, path));
        !st) {
      return st.error();
    }
    if (connection->is_tls()) return engine::start_tls_relay(std::move(connection));
    return connection->take_socket();
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
    if (answer->status != 200) {
      return (*connection)->status_error(answer->request, answer->status, answer->body);
    }
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
  return engine::answer_error(impl_->endpoint.url, answer.request, answer.status, answer.body);
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
    return connection->status_error(answer->request, answer->status, answer->body);
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
  return impl_->hijack(std::move(connection), method, target, path, body_json, headers,
                       upgrade_protocol);
}

Result<int> DockerEngine::hijack_unversioned(std::string_view method, std::string_view path,
                                             std::string_view body_json,
                                             const EngineHeaders& headers,
                                             std::string_view upgrade_protocol, Deadline deadline) {
  auto connection = impl_->connect(deadline);
  if (!connection) return connection.error();
  return impl_->hijack(std::move(*connection), method, std::string(path), path, body_json, headers,
                       upgrade_protocol);
}

}  // namespace envd::sdk
