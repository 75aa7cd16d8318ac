#include "envd/address.hpp"

#include "envd/text.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstddef>

namespace envd::sdk {
namespace {

// How much of a value a message quotes: a 100 KB address said twice made a
// 200 KB line. Past it, "..." shows the cut.
constexpr std::size_t kQuoted = 200;

// Every message here quotes what the user (or a stored file) gave; printable()
// keeps a control character or escape sequence in it from reaching the
// terminal raw. envd's own words have none, so escaping the whole is exact.
Error invalid(const std::string& message) {
  return Error(Errc::invalid_argument, printable(message));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
bool is_unreserved(char c) { return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~'; }
bool is_control_or_space(unsigned char c) { return c <= 0x20 || c == 0x7f; }

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string to_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return invalid("'" + std::string(text.substr(i, 3)) + "' in '" + std::string(text) +
                     "' is not a valid percent-escape (expected %XX)");
    }
    auto byte = static_cast<unsigned char>(hi * 16 + lo);
    if (byte < 0x20 || byte == 0x7f) {
      return invalid("'" + std::string(text) + "' encodes a control character");
    }
    out += static_cast<char>(byte);
    i += 2;
  }
  return out;
}

// Keeps unreserved characters and the few that read well in addresses
// (kube contexts such as "arn:aws:eks:...:cluster/x" or "user@cluster").
std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (is_unreserved(c) || c == ':' || c == '@' || c == '/' || c == ',') {
      out += c;
    } else {
      auto byte = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out;
}

Result<uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return invalid("the port is missing");
  unsigned value = 0;
  bool digits = text.size() <= 5 && std::all_of(text.begin(), text.end(), is_digit);
  if (digits) std::from_chars(text.data(), text.data() + text.size(), value);
  if (!digits || value < 1 || value > 65535) {
    return invalid("port '" + printable(text, kQuoted) + "' is not a number from 1 to 65535");
  }
  return static_cast<uint16_t>(value);
}

constexpr std::string_view kHostForms = "an IPv4 address, a bracketed IPv6 address or a DNS name";

// A host outside brackets: IPv4 or DNS name (lower-cased).
Result<HostPort> parse_plain_host(std::string_view host) {
  if (host.empty()) return invalid("the host is missing");
  if (is_ipv4(host)) return HostPort{std::string(host), 0, HostKind::ipv4};
  if (is_dns_name(host)) return HostPort{to_lower(host), 0, HostKind::dns};
  if (host.find(':') != std::string_view::npos && is_ipv6(host)) {
    return invalid("IPv6 host '" + printable(host, kQuoted) + "' must be in brackets, e.g. [" +
                   std::string(host) + "]");
  }
  return invalid("host '" + printable(host, kQuoted) + "' is not " + std::string(kHostForms));
}

// "[v6]" followed by the rest of the authority; returns the host and the text after ']'.
Result<std::pair<HostPort, std::string_view>> parse_bracketed_host(std::string_view text) {
  size_t close = text.find(']');
  if (close == std::string_view::npos) {
    return invalid("'" + std::string(text) + "' opens '[' without a closing ']'");
  }
  std::string_view host = text.substr(1, close - 1);
  if (!is_ipv6(host)) {
    return invalid("'" + printable(host, kQuoted) + "' in brackets is not an IPv6 address");
  }
  return std::pair{HostPort{to_lower(host), 0, HostKind::ipv6}, text.substr(close + 1)};
}

// host[:port] as in a URL authority (port optional) or host:port (port required).
Result<HostPort> parse_host_and_port(std::string_view text, bool port_required) {
  if (text.empty()) return invalid("the host is missing");
  // "user:password@host:port": said without quoting the host, which would
  // repeat the password.
  if (text.find('@') != std::string_view::npos) {
    return invalid("a user or password in the address is not allowed");
  }
  HostPort result;
  std::string_view port_text;
  bool has_port = false;
  if (text.front() == '[') {
    auto bracketed = parse_bracketed_host(text);
    if (!bracketed) return bracketed.error();
    result = bracketed->first;
    std::string_view rest = bracketed->second;
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return invalid("unexpected '" + std::string(rest) + "' after the IPv6 address");
      }
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = text.rfind(':');
    std::string_view host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      if (host.find(':') != std::string_view::npos) {
        // Several colons: an unbracketed IPv6 address, with or without a port.
        if (is_ipv6(text) || is_ipv6(host)) {
          return invalid("IPv6 host must be in brackets, e.g. [::1]:8888");
        }
        return invalid("host '" + printable(host, kQuoted) + "' is not " + std::string(kHostForms));
      }
      has_port = true;
      port_text = text.substr(colon + 1);
    }
    auto parsed = parse_plain_host(host);
    if (!parsed) return parsed.error();
    result = *parsed;
  }
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port) return port.error();
    result.port = *port;
  } else if (port_required) {
    return invalid("the port is missing");
  }
  return result;
}

Result<std::string> parse_user(std::string_view user) {
  if (user.empty()) return invalid("the user name before '@' is empty");
  if (user.find(':') != std::string_view::npos) {
    return invalid("a password in the address is not allowed");
  }
  bool valid =
      std::all_of(user.begin(), user.end(), [](char c) { return is_unreserved(c) || c == '%'; });
  if (!valid) return invalid("user name '" + std::string(user) + "' has characters a URL forbids");
  return std::string(user);
}

Status reject_fragment(std::string_view text) {
  if (text.find('#') != std::string_view::npos) return invalid("a fragment ('#') is not allowed");
  return {};
}

Status reject_control_or_space(std::string_view text, std::string_view what) {
  bool bad = std::any_of(text.begin(), text.end(),
                         [](char c) { return is_control_or_space(static_cast<unsigned char>(c)); });
  if (bad) return invalid(std::string(what) + " contains a space or control character");
  return {};
}

}  // namespace

std::string HostPort::to_string() const {
  std::string text = kind == HostKind::ipv6 ? "[" + host + "]" : host;
  return text + ":" + std::to_string(port);
}

bool is_ipv4(std::string_view text) {
  int parts = 0;
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    std::string_view part = text.substr(start, dot == std::string_view::npos ? dot : dot - start);
    bool number = !part.empty() && part.size() <= 3 &&
                  std::all_of(part.begin(), part.end(), is_digit) &&
                  !(part.size() > 1 && part.front() == '0');  // no octal look-alikes
    int value = 0;
    if (number) std::from_chars(part.data(), part.data() + part.size(), value);
    if (!number || value > 255 || ++parts > 4) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

bool is_ipv6(std::string_view text) {
  // inet_pton reads up to a NUL: "::1\0junk" must not pass for ::1.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
      text.find('\0') != std::string_view::npos) {
    return false;
  }
  std::string copy(text);  // inet_pton needs a terminated string
  in6_addr address{};
  return inet_pton(AF_INET6, copy.c_str(), &address) == 1;
}

bool is_dns_name(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  size_t start = 0;
  std::string_view label;
  while (true) {
    size_t dot = text.find('.', start);
    label = text.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    if (!std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; })) {
      return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  // An all-numeric last label would make "1.2.3.999" a name (RFC 3696 section 2).
  return !std::all_of(label.begin(), label.end(), is_digit);
}

Result<HostPort> parse_host_port(std::string_view text) {
  if (text.empty()) return invalid("the address is empty");
  return parse_host_and_port(text, /*port_required=*/true);
}

std::string Url::to_string() const {
  std::string text = scheme + "://";
  if (!user.empty()) text += user + "@";
  text += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port) text += ":" + std::to_string(*port);
  text += path;
  if (!query.empty()) text += "?" + format_query(query);
  return text;
}

Result<Url> parse_url(std::string_view text) {
  size_t separator = text.find("://");
  if (separator == std::string_view::npos) return invalid("the scheme is missing");
  std::string_view scheme = text.substr(0, separator);
  bool scheme_ok = !scheme.empty() && is_alpha(scheme.front()) &&
                   std::all_of(scheme.begin(), scheme.end(), [](char c) {
                     return is_alnum(c) || c == '+' || c == '.' || c == '-';
                   });
  if (!scheme_ok) return invalid("scheme '" + std::string(scheme) + "' is not a valid URL scheme");
  if (auto status = reject_fragment(text); !status) return status.error();
  if (auto status = reject_control_or_space(text, "the URL"); !status) return status.error();

  Url url;
  url.scheme = to_lower(scheme);
  std::string_view rest = text.substr(separator + 3);
  size_t question = rest.find('?');
  std::string_view query_text =
      question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);
  rest = rest.substr(0, question);

  if (url.scheme == "unix") {
    if (rest.empty()) return invalid("the unix socket path is missing");
    if (rest.front() != '/') {
      // The common slip is two slashes for three; the fix, in the user's own
      // path, fits any socket (BuildKit's, the Engine's).
      // ("./x" is no slip: no fix is guessed for it.)
      return invalid("unix socket path '" + std::string(rest) + "' must be absolute" +
                     (rest.front() == '.' ? std::string()
                                          : " (three slashes: unix:///" + std::string(rest) + ")"));
    }
    url.path = std::string(rest);
  } else {
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) url.path = std::string(rest.substr(slash));
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
      auto user = parse_user(authority.substr(0, at));
      if (!user) return user.error();
      url.user = std::move(*user);
      authority = authority.substr(at + 1);
    }
    auto host = parse_host_and_port(authority, /*port_required=*/false);
    if (!host) return host.error();
    url.host = std::move(host->host);
    if (host->port != 0) url.port = host->port;
  }

  auto query = parse_query(query_text);
  if (!query) return query.error();
  url.query = std::move(*query);
  return url;
}

Result<QueryParams> parse_query(std::string_view text) {
  QueryParams params;
  if (text.empty()) return params;
  if (auto status = reject_control_or_space(text, "query '" + std::string(text) + "'"); !status) {
    return status.error();
  }
  size_t start = 0;
  while (true) {
    size_t amp = text.find('&', start);
    std::string_view item = text.substr(start, amp == std::string_view::npos ? amp : amp - start);
    if (item.empty()) return invalid("query '" + std::string(text) + "' has an empty parameter");
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return invalid("parameter '" + std::string(item) + "' has no value (expected key=value)");
    }
    if (eq == 0) return invalid("parameter '" + std::string(item) + "' has no name");
    auto key = percent_decode(item.substr(0, eq));
    if (!key) return key.error();
    auto value = percent_decode(item.substr(eq + 1));
    if (!value) return value.error();
    if (find_query_param(params, *key) != nullptr) {
      return invalid("parameter '" + *key + "' is given twice");
    }
    params.emplace_back(std::move(*key), std::move(*value));
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return params;
}

std::string format_query(const QueryParams& params) {
  std::string text;
  for (const auto& [key, value] : params) {
    if (!text.empty()) text += '&';
    text += percent_encode(key) + "=" + percent_encode(value);
  }
  return text;
}

const std::string* find_query_param(const QueryParams& params, std::string_view key) {
  auto it = std::find_if(params.begin(), params.end(),
                         [key](const auto& param) { return param.first == key; });
  return it == params.end() ? nullptr : &it->second;
}

Status check_query_keys(const QueryParams& params, const std::vector<std::string_view>& allowed) {
  for (const auto& param : params) {
    if (std::find(allowed.begin(), allowed.end(), param.first) != allowed.end()) continue;
    std::string names;
    for (std::string_view name : allowed) names += (names.empty() ? "" : ", ") + std::string(name);
    return invalid("unknown parameter '" + param.first + "' (allowed: " + names + ")");
  }
  return {};
}

std::string NameWithQuery::to_string() const {
  return query.empty() ? name : name + "?" + format_query(query);
}

Result<NameWithQuery> parse_name_with_query(std::string_view text) {
  if (auto status = reject_fragment(text); !status) return status.error();
  size_t question = text.find('?');
  NameWithQuery result;
  result.name = std::string(text.substr(0, question));
  if (question != std::string_view::npos) {
    auto query = parse_query(text.substr(question + 1));
    if (!query) return query.error();
    result.query = std::move(*query);
  }
  return result;
}

std::string redact_password(std::string_view address) {
  std::size_t start = address.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  // The last '@' anywhere, and not only before the path: a password typed
  // without percent-encoding may hold '/', '?' or '#'. Hiding a path's
  // "h:1/a@b" too is the price; a message may say less, never the secret.
  std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(address);
  std::size_t colon = address.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(address);
  return std::string(address.substr(0, colon + 1)) + "xxxxx" + std::string(address.substr(at));
}

Error address_error(std::string_view subject, std::string_view input, std::string_view reason,
                    std::string_view expected) {
  std::string message =
      std::string(subject) + " '" + printable(redact_password(input), kQuoted) + "' is invalid: ";
  if (!reason.empty()) message += std::string(reason) + "; ";
  return invalid(message + "expected " + std::string(expected));
}

std::string_view strip_scheme(std::string_view text, std::string_view scheme) {
  size_t n = scheme.size();
  if (text.size() >= n + 3 && equals_ignore_case(text.substr(0, n), scheme) &&
      text.substr(n, 3) == "://") {
    return text.substr(n + 3);
  }
  return text;
}

std::string scheme_of(std::string_view text) {
  size_t separator = text.find("://");
  return separator == std::string_view::npos ? std::string() : to_lower(text.substr(0, separator));
}

Result<std::string_view> strip_optional_scheme(std::string_view text, std::string_view scheme) {
  std::string_view rest = strip_scheme(text, scheme);
  if (rest.find("://") != std::string_view::npos) {
    if (rest.size() != text.size()) {
      return invalid("the address has two schemes ('" + std::string(scheme) + "://" +
                     scheme_of(rest) + "://')");
    }
    return invalid("scheme '" + scheme_of(rest) + "://' is not accepted (only " +
                   std::string(scheme) + ":// or none)");
  }
  return rest;
}

}  // namespace envd::sdk
