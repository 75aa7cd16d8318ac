// The tcp builder: a BuildKit daemon that someone else runs, listening on TCP.
//
// Address grammar: host:port, the host an IPv4 address, a bracketed IPv6
// address or a DNS name; "tcp://host:port" is accepted and stored as host:port.
// There is no default address. Connecting (plain gRPC, no TLS) comes later.
#pragma once

#include <string>

#include "envd/plugin.hpp"

namespace envd::plugins {

class TcpBuilder final : public sdk::BuilderDriver {
 public:
  Result<std::string> normalize_address(const std::string& address) const override;
};

}  // namespace envd::plugins
