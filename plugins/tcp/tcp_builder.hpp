// The tcp builder: a BuildKit daemon that someone else runs, listening on TCP
// (`buildkitd --addr tcp://0.0.0.0:8888`), reached plaintext or over TLS.
//
// Address grammar: host:port, the host an IPv4 address, a bracketed IPv6
// address or a DNS name; "tcp://host:port" is accepted and stored as host:port.
// There is no default address. Shown as tcp://host:port.
//
// Options (all optional):
//   tls-ca          file: CA certificate (PEM) that signed the daemon's certificate
//   tls-cert        file: client certificate (PEM) for mutual TLS; needs tls-key
//   tls-key         file: the client certificate's private key (PEM); needs tls-cert
//   tls-servername  the name to verify in the daemon's certificate (default: the
//                   address's host); only with TLS material
// Any of tls-ca or tls-cert/tls-key turns TLS on. tls-ca alone is server-only
// TLS; tls-cert/tls-key without tls-ca verify the daemon against the system's
// CA roots. The files are copied into the context's store by the core; dial
// reads the stored copies.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class TcpBuilder final : public sdk::BuilderDriver {
 public:
  static constexpr const char* kFileOptions[] = {"tls-ca", "tls-cert", "tls-key", nullptr};

  Result<std::string> normalize_address(const std::string& address) const override;

  // Accepts the keys above; tls-cert and tls-key come together; tls-servername
  // needs TLS material and must be a DNS name or an IP address. No I/O.
  Result<sdk::Options> normalize_options(const sdk::Options& options) const override;

  // A gRPC target ("ipv4:1.2.3.4:8888", "ipv6:[::1]:8888" or
  // "dns:///host:8888") with the PEM contents of the stored TLS files. The core
  // dials it; this only reads files. Errors name the option and the context.
  Result<sdk::Transport> dial(const sdk::Request& request) override;

  // {"state":"unknown","detail":"mutual TLS; envd does not manage this
  // daemon"}: whether the daemon answers is for the core to probe (`envd
  // builder status`); the detail says how it would be reached.
  Result<std::string> status(const sdk::Request& request) override;

  // The daemon is not managed by envd: these fail with Errc::unsupported.
  Result<std::string> bootstrap(const sdk::Request& request) override;
  Status stop(const sdk::Request& request) override;
  Status remove(const sdk::Request& request) override;
};

}  // namespace envd::plugins
