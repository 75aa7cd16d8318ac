// DOCKER_HOST and the TLS variables: what the docker CLI would connect to.
#include "envd/docker_engine.hpp"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "envd/address.hpp"
#include "envd/text.hpp"

namespace envd::sdk {
namespace {

constexpr const char* kDefaultHost = "unix:///var/run/docker.sock";
// The docker CLI's default when TLS is asked for and DOCKER_HOST is empty.
constexpr const char* kDefaultTlsHost = "tcp://localhost:2376";
constexpr uint16_t kDefaultTcpPort = 2375;
constexpr uint16_t kDefaultTlsPort = 2376;

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

}  // namespace

namespace {
Result<DockerEndpoint> parse_docker_host_text(std::string_view docker_host);
}  // namespace

// The messages quote DOCKER_HOST as given: printable() keeps it on one line.
Result<DockerEndpoint> parse_docker_host(std::string_view docker_host) {
  auto parsed = parse_docker_host_text(docker_host);
  if (!parsed) return Error(parsed.error().code(), printable(parsed.error().message()));
  return parsed;
}

namespace {

Result<DockerEndpoint> parse_docker_host_text(std::string_view docker_host) {
  std::string_view text = docker_host.empty() ? std::string_view(kDefaultHost) : docker_host;
  const std::string expected =
      "unix:///path/to/docker.sock, tcp://host[:port] or ssh://[user@]host[:port]";
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
    // ssh joins the remote command into one line that the remote user's
    // shell reads: a path holding `;`, `$(...)` or a space would run there.
    // A socket path needs none of that.
    auto shell_safe = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
             std::string_view("/._-+@%,=:").find(c) != std::string_view::npos;
    };
    if (!std::all_of(url->path.begin(), url->path.end(), shell_safe)) {
      return Error(Errc::invalid_argument,
                   "DOCKER_HOST '" + std::string(text) +
                       "' is invalid: the remote socket path may hold only letters, digits and "
                       "/ . _ - + @ % , = : (the remote shell would read anything else)");
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

}  // namespace

Result<DockerSettings> docker_settings_from_env() {
  return docker_settings_for(env_value("DOCKER_HOST"));
}

Result<DockerSettings> docker_settings_for(std::string host) {
  const bool verify = env_set("DOCKER_TLS_VERIFY");
  const bool tls = verify || env_set("DOCKER_TLS");
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

}  // namespace envd::sdk
