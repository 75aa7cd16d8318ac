#include "tcp_builder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "envd/address.hpp"
#include "envd/text.hpp"

namespace envd::plugins {
namespace {

constexpr std::string_view kSubject = "tcp builder address";
constexpr std::string_view kExpected = "host:port (IPv4, [IPv6] or DNS name), e.g. 10.0.0.5:8888";

constexpr std::array<std::string_view, 4> kOptionKeys = {"tls-ca", "tls-cert", "tls-key",
                                                         "tls-servername"};

// The named flag of each option, for messages that tell the user what to type.
std::string flag_of(std::string_view key) { return "--builder-" + std::string(key); }

// Certificates and keys are small; anything bigger is not what the user meant.
constexpr size_t kMaxPemBytes = size_t{1} << 20;

const std::string* find(const sdk::Options& options, std::string_view key) {
  auto it = options.find(std::string(key));
  return it == options.end() ? nullptr : &it->second;
}

// Reads the stored copy of a TLS file option and checks that it holds the PEM
// block it should, so a swapped or truncated file is reported here, naming the
// option, rather than as an opaque handshake failure.
Result<std::string> read_pem(const sdk::Request& request, std::string_view key,
                             std::string_view block) {
  const std::string& path = request.options.at(std::string(key));
  auto fail = [&](Errc code, const std::string& why) {
    return Error(code, std::string(key) + " of context '" + request.context + "' ('" + path +
                           "') " + why + "; set it again with `envd context update " +
                           request.context + " " + flag_of(key) + " FILE`");
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int saved = errno;
    return fail(saved == ENOENT ? Errc::not_found : Errc::permission,
                std::string("cannot be read: ") + std::strerror(saved));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(Errc::invalid_argument, "is not a regular file");
  }
  std::string content;
  std::array<char, 8192> buffer{};
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      ::close(fd);
      return fail(Errc::internal, std::string("cannot be read: ") + std::strerror(saved));
    }
    if (n == 0) break;
    content.append(buffer.data(), static_cast<size_t>(n));
    if (content.size() > kMaxPemBytes) {
      ::close(fd);
      return fail(Errc::invalid_argument, "is larger than 1 MiB");
    }
  }
  ::close(fd);
  auto labels = sdk::pem_labels(content);
  bool found = std::any_of(labels.begin(), labels.end(),
                           [&](std::string_view label) { return sdk::pem_label_is(label, block); });
  if (!found) {
    return fail(Errc::invalid_argument,
                "is not a PEM file with a " + std::string(block) + " block");
  }
  return content;
}

Error unknown_option(const std::string& key) {
  std::string allowed;
  for (auto k : kOptionKeys) {
    if (!allowed.empty()) allowed += ", ";
    allowed += k;
  }
  return Error(Errc::invalid_argument, "unknown option '" + key + "' (allowed: " + allowed + ")");
}

Error empty_option(const std::string& key) {
  return Error(Errc::invalid_argument, "option '" + key + "' is empty");
}

Error not_managed(std::string_view verb) {
  return Error(Errc::unsupported,
               "nothing to " + std::string(verb) +
                   ": it connects to a buildkitd that someone else runs (start the daemon "
                   "yourself, e.g. `buildkitd --addr tcp://0.0.0.0:8888`)");
}

}  // namespace

Result<std::string> TcpBuilder::normalize_address(const std::string& address) const {
  if (address.empty()) {
    return Error(Errc::invalid_argument,
                 "no default address: pass --builder-address host:port, "
                 "e.g. --builder-address 10.0.0.5:8888");
  }
  auto rest = sdk::strip_optional_scheme(address, "tcp");
  if (!rest) return sdk::address_error(kSubject, address, rest.error().message(), kExpected);
  auto host_port = sdk::parse_host_port(*rest);
  if (!host_port)
    return sdk::address_error(kSubject, address, host_port.error().message(), kExpected);
  return host_port->to_string();
}

Result<sdk::Options> TcpBuilder::normalize_options(const sdk::Options& options) const {
  for (const auto& [key, value] : options) {
    bool known = false;
    for (auto k : kOptionKeys) known = known || key == k;
    if (!known) return unknown_option(key);
    if (value.empty()) return empty_option(key);
  }
  const std::string* cert = find(options, "tls-cert");
  const std::string* key = find(options, "tls-key");
  if ((cert == nullptr) != (key == nullptr)) {
    return Error(
        Errc::invalid_argument,
        std::string("a client certificate comes with its private key: ") +
            (cert != nullptr ? "tls-cert is set without tls-key (add --builder-tls-key)"
                             : "tls-key is set without tls-cert (add --builder-tls-cert)"));
  }
  if (const std::string* name = find(options, "tls-servername")) {
    if (find(options, "tls-ca") == nullptr && cert == nullptr) {
      return Error(Errc::invalid_argument,
                   "tls-servername '" + *name +
                       "' needs TLS: set --builder-tls-ca (and, for mutual TLS, "
                       "--builder-tls-cert and --builder-tls-key)");
    }
    if (!sdk::is_dns_name(*name) && !sdk::is_ipv4(*name) && !sdk::is_ipv6(*name)) {
      return Error(Errc::invalid_argument, "tls-servername '" + *name +
                                               "' is not a DNS name or an IP address, e.g. "
                                               "buildkitd.example.com");
    }
  }
  return options;
}

Result<sdk::Transport> TcpBuilder::dial(const sdk::Request& request) {
  auto host_port = sdk::parse_host_port(request.address);
  if (!host_port) {
    return sdk::address_error(kSubject, request.address, host_port.error().message(), kExpected);
  }
  sdk::Transport transport;
  transport.kind = sdk::Transport::Kind::grpc_target;
  // The core dials the target itself; nothing of this module runs after
  // dial() returns.
  transport.self_contained = true;
  // Address literals go to gRPC's ipv4:/ipv6: resolvers so that no DNS lookup
  // happens for them; names go through its DNS resolver.
  const std::string port = std::to_string(host_port->port);
  switch (host_port->kind) {
    case sdk::HostKind::ipv4:
      transport.target = "ipv4:" + host_port->host + ":" + port;
      break;
    case sdk::HostKind::ipv6:
      transport.target = "ipv6:[" + host_port->host + "]:" + port;
      break;
    case sdk::HostKind::dns:
      transport.target = "dns:///" + host_port->host + ":" + port;
      break;
  }
  transport.description = "tcp://" + host_port->to_string();

  if (find(request.options, "tls-ca") != nullptr) {
    auto ca = read_pem(request, "tls-ca", "CERTIFICATE");
    if (!ca) return ca.error();
    transport.tls_ca_pem = std::move(*ca);
  }
  if (find(request.options, "tls-cert") != nullptr) {
    auto cert = read_pem(request, "tls-cert", "CERTIFICATE");
    if (!cert) return cert.error();
    auto key = read_pem(request, "tls-key", "PRIVATE KEY");
    if (!key) return key.error();
    transport.tls_cert_pem = std::move(*cert);
    transport.tls_key_pem = std::move(*key);
  }
  if (!transport.tls_ca_pem.empty() || !transport.tls_cert_pem.empty()) {
    const std::string* name = find(request.options, "tls-servername");
    transport.tls_server_name = name != nullptr ? *name : host_port->host;
  }
  return transport;
}

Result<std::string> TcpBuilder::status(const sdk::Request& request) {
  const bool ca = find(request.options, "tls-ca") != nullptr;
  const bool client = find(request.options, "tls-cert") != nullptr;
  std::string security = client ? "mutual TLS" : ca ? "server-only TLS" : "plaintext";
  boost::json::object out;
  out["state"] = "unknown";
  // Short: the core appends it to connect errors ("...: connection refused
  // (plaintext; ...)"), where the address and the reason are already said.
  out["detail"] = security + "; envd does not manage this daemon";
  return boost::json::serialize(out);
}

Result<std::string> TcpBuilder::bootstrap(const sdk::Request& /*request*/) {
  return not_managed("bootstrap");
}
Status TcpBuilder::stop(const sdk::Request& /*request*/) { return not_managed("stop"); }
Status TcpBuilder::remove(const sdk::Request& /*request*/) { return not_managed("remove"); }

}  // namespace envd::plugins
