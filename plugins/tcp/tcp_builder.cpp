#include "tcp_builder.hpp"

#include "envd/address.hpp"

namespace envd::plugins {
namespace {

constexpr std::string_view kSubject = "tcp builder address";
constexpr std::string_view kExpected = "host:port (IPv4, [IPv6] or DNS name), e.g. 10.0.0.5:8888";

}  // namespace

Result<std::string> TcpBuilder::normalize_address(const std::string& address) const {
  if (address.empty()) {
    return Error(Errc::invalid_argument,
                 "the tcp builder has no default address: pass --builder-address host:port, "
                 "e.g. --builder-address 10.0.0.5:8888");
  }
  auto rest = sdk::strip_optional_scheme(address, "tcp");
  if (!rest) return sdk::address_error(kSubject, address, rest.error().message(), kExpected);
  auto host_port = sdk::parse_host_port(*rest);
  if (!host_port)
    return sdk::address_error(kSubject, address, host_port.error().message(), kExpected);
  return host_port->to_string();
}

}  // namespace envd::plugins
