// TLS to a BuildKit daemon, done by envd rather than by gRPC.
//
// buildkitd wraps its TCP listener in Go's crypto/tls without ALPN, so it
// selects no application protocol. gRPC's C-core TLS credentials refuse such
// a peer ("missing selected ALPN property"), while Go clients (buildctl, buildx)
// accept it. So envd does the handshake itself with OpenSSL (through Asio),
// offering "h2" but accepting a server that selects nothing, and hands gRPC a
// plaintext HTTP/2 socket whose other end a relay thread carries through the
// TLS connection. Verification is what buildctl does: the daemon's chain
// against the CA, its name (DNS or IP) against the server name, and the client
// certificate when one is given.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "envd/result.hpp"

namespace envd::buildkit {

struct TlsSettings {
  std::string ca_pem;       // CA bundle for the daemon's chain; "" uses the system's roots
  std::string cert_pem;     // client certificate; "" for none
  std::string key_pem;      // its key; set iff cert_pem is
  std::string server_name;  // name the certificate must hold; "" means the host dialled
};

// A daemon's TCP address, from a driver's gRPC target: "ipv4:1.2.3.4:5",
// "ipv6:[::1]:5", "dns:///name:5", "dns:name:5", "tcp://name:5" or "name:5".
struct TcpTarget {
  std::string host;  // without brackets
  std::uint16_t port = 0;
};
Result<TcpTarget> parse_tcp_target(const std::string& target);

// One TLS connection to a daemon and the relay that carries it. Owns a thread
// from dial() until destruction, which closes both sockets and joins it.
class TlsTunnel {
 public:
  // Connects to `target` and completes the TLS handshake within `deadline`.
  // Errors carry only the reason (the caller names the daemon):
  //   Errc::unavailable  "connection refused", "cannot resolve 'h' (DNS: ...)",
  //                      "TLS handshake failed: <cause and the option to fix>"
  //                      (retryable() says whether redialling may help)
  //   Errc::invalid_argument  "TLS setup failed: ..." (unusable PEM material)
  //   Errc::timeout      "... did not complete the TLS handshake within 5s"
  //   Errc::cancelled    "cancelled" once `cancelled` says so (checked every 50 ms)
  static Result<std::unique_ptr<TlsTunnel>> dial(
      const TcpTarget& target, const TlsSettings& settings, std::chrono::milliseconds deadline,
      const std::function<bool()>& cancelled = [] { return false; });

  // Whether a dial() failure with this message may succeed later (the daemon
  // is starting): refused or reset before TLS began.
  static bool retryable(const Error& error);

  TlsTunnel(const TlsTunnel&) = delete;
  TlsTunnel& operator=(const TlsTunnel&) = delete;
  ~TlsTunnel();

  // The plaintext end for gRPC (non-blocking, close-on-exec). The caller owns
  // it; call once.
  int release_fd();

  // Why the TLS connection failed after the handshake, e.g. the daemon's TLS
  // 1.3 alert refusing the client certificate, which arrives only then; "" if
  // it did not fail (or ended cleanly). Thread-safe.
  std::string failure() const;

  struct State;  // implementation (tls_tunnel.cpp)

 private:
  explicit TlsTunnel(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace envd::buildkit
