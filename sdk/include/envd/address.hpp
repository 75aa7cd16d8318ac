// Address grammars shared by drivers: one parser per grammar.
//
//   host:port     parse_host_port       "10.0.0.5:8888", "[::1]:8888", "build.example.com:8888"
//   URL           parse_url             "http://localhost:8080/api", "unix:///run/x.sock"
//   query string  parse_query           "namespace=ci&container=buildkitd"
//   name?query    parse_name_with_query "buildkitd-0?namespace=ci", "envd_buildkitd"
//
// Parsers are pure (no DNS, no I/O). Errors are Errc::invalid_argument with a
// message naming the part of the input at fault and what was expected, worded
// to follow a caller's prefix that names the whole input, e.g.
//   "tcp builder address 'h:99999' is invalid: " +
//   "port '99999' is not a number from 1 to 65535"
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
  std::string scheme;  // lower-cased, e.g. "http", "unix", "tcp"
  std::string host;    // empty for unix:// URLs; no brackets for IPv6
  std::optional<uint16_t> port;
  std::string path;   // "" or starting with '/'
  QueryParams query;  // in order of appearance, percent-decoded
  std::string user;   // user before '@', "" if none; "user:password" is rejected
                      // (added for ssh://; last so aggregate initialisers still work)

  // Canonical text: scheme://[user@][host][:port]path[?query], the query
  // re-encoded with format_query().
  std::string to_string() const;
};

// Parses scheme://[user@]host[:port][/path][?query]. The scheme must match
// [A-Za-z][A-Za-z0-9+.-]*; the host must pass is_ipv4, is_dns_name or (in
// brackets) is_ipv6; a fragment ('#'), a raw space or a control character is an
// error. For "unix" there is no authority: everything up to an optional '?' is
// the socket path (unix:///run/buildkitd.sock), which must be absolute. The
// path is kept as typed (not percent-decoded).
Result<Url> parse_url(std::string_view text);

// Parses "k=v&k2=v2" (percent-decoding keys and values). Empty input is no
// parameters; a parameter without '=' or a name, a repeated key, a bad %-escape,
// a raw space or a (raw or encoded) control character is an error.
Result<QueryParams> parse_query(std::string_view text);

// The inverse of parse_query: "k=v&k2=v2" in the given order, percent-encoding
// everything but letters, digits and -._~:@/, (so '&', '=', '%', '#', '+', '?'
// and spaces never appear raw). Empty params give "". Added for canonical
// addresses.
std::string format_query(const QueryParams& params);

// The value of `key` in `params`, or nullptr if it is absent. Added so drivers
// look parameters up the same way.
const std::string* find_query_param(const QueryParams& params, std::string_view key);

// Fails with Errc::invalid_argument "unknown parameter '<k>' (allowed: a, b, c)"
// if `params` has a key outside `allowed`. Added for driver grammars that take a
// fixed set of parameters.
Status check_query_keys(const QueryParams& params, const std::vector<std::string_view>& allowed);

// "<name>[?<query>]": an object named by a bare word with optional parameters,
// the shape of docker-container and kube-pod addresses. Added so both drivers
// share one parser.
struct NameWithQuery {
  std::string name;   // everything before the first '?', not validated here
  QueryParams query;  // parsed with parse_query

  // "name" or "name?<format_query(query)>" (no '?' when the query is empty).
  std::string to_string() const;
};

// Splits at the first '?' and parses the query. Fails only on a malformed query
// (or a '#', which no address grammar allows); the caller validates the name.
Result<NameWithQuery> parse_name_with_query(std::string_view text);

// `address` with the password of a "user:password@" part written as xxxxx
// (as the docker CLI shows one), for messages that quote what the user typed.
// Everything from the first ':' after the scheme to the last '@' is hidden,
// so a password holding '/', '?' or '#' does not show either.
std::string redact_password(std::string_view address);

// The one wording of a rejected address, so every driver says it alike:
//   "<subject> '<input>' is invalid: <reason>; expected <expected>"
// e.g. address_error("tcp builder address", "10.0.0.5", "the port is missing",
//                    "host:port (IPv4, [IPv6] or DNS name), e.g. 10.0.0.5:8888").
// An empty reason leaves out "<reason>; ". The code is Errc::invalid_argument.
// Added for driver modules.
Error address_error(std::string_view subject, std::string_view input, std::string_view reason,
                    std::string_view expected);

// If `text` starts with "<scheme>://" (scheme compared case-insensitively, as
// URLs do), returns the rest; otherwise `text`.
std::string_view strip_scheme(std::string_view text, std::string_view scheme);

// The text before the first "://", lower-cased, or "" if there is none. Not
// validated; lets a driver reject a foreign scheme before parsing the rest.
// Added for driver modules.
std::string scheme_of(std::string_view text);

// For grammars where "<scheme>://" is an optional prefix of a bare address
// (tcp://h:p, kube-pod://pod): strips it as strip_scheme does, and fails with
// Errc::invalid_argument "scheme 'http://' is not accepted (only tcp:// or
// none)" if the rest still has "://", i.e. another scheme was written. Added
// for driver modules.
Result<std::string_view> strip_optional_scheme(std::string_view text, std::string_view scheme);

}  // namespace envd::sdk
