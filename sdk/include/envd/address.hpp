// Address grammars shared by drivers: one parser per grammar.
//
//   host:port     parse_host_port   "10.0.0.5:8888", "[::1]:8888", "build.example.com:8888"
//   URL           parse_url         "http://localhost:8080/api", "unix:///run/x.sock"
//   query string  parse_query       "namespace=ci&container=buildkitd"
//
// Parsers are pure (no DNS, no I/O). Errors are Errc::invalid_argument with a
// message naming the input and what was expected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "envd/result.hpp"

namespace envd::sdk {

enum class HostKind { ipv4, ipv6, dns };

struct HostPort {
  std::string host;  // without brackets for IPv6; DNS names lower-cased
  uint16_t port = 0;
  HostKind kind = HostKind::dns;

  // "host:port", with brackets around an IPv6 host.
  std::string to_string() const;
};

// A host and a required port 1-65535. IPv6 hosts must be bracketed.
Result<HostPort> parse_host_port(std::string_view text);

// Host syntax alone (no port): dotted-quad IPv4, bare IPv6 (for use inside
// brackets) or an RFC 1123 DNS name.
bool is_ipv4(std::string_view text);
bool is_ipv6(std::string_view text);
bool is_dns_name(std::string_view text);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct Url {
  std::string scheme;           // lower-cased, e.g. "http", "unix", "tcp"
  std::string host;             // empty for unix:// URLs; no brackets for IPv6
  std::optional<uint16_t> port;
  std::string path;             // "" or starting with '/'
  QueryParams query;            // in order of appearance, percent-decoded

  // Canonical text: scheme://[host][:port]path[?query].
  std::string to_string() const;
};

// Parses scheme://authority/path?query. For "unix" the whole path is the socket
// path (unix:///run/buildkitd.sock) and there is no authority.
Result<Url> parse_url(std::string_view text);

// Parses "k=v&k2=v2" (percent-decoding keys and values). Empty input is no
// parameters; a parameter without '=' or a repeated key is an error.
Result<QueryParams> parse_query(std::string_view text);

// If `text` starts with "<scheme>://", returns the rest; otherwise `text`.
std::string_view strip_scheme(std::string_view text, std::string_view scheme);

}  // namespace envd::sdk
