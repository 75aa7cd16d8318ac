#include "cli/flag_values.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "envd/address.hpp"
#include "envd/text.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

Error invalid(std::string_view flag, std::string_view text, std::string_view form) {
  return Error(Errc::invalid_argument, "invalid " + std::string(flag) + " '" +
                                           util::printable(text) + "': expected " +
                                           std::string(form));
}

// A port of 1..65535 written in decimal; 0 for "" when `allow_empty`; -1 for
// anything else.
int port_of(std::string_view text, bool allow_empty) {
  if (text.empty()) return allow_empty ? 0 : -1;
  if (text.size() > 5 || !std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      })) {
    return -1;
  }
  int n = 0;
  for (char c : text) n = n * 10 + (c - '0');
  return n >= 1 && n <= 65535 ? n : -1;
}

// An IPv4 or IPv6 address, as the runner will have to bind it.
bool is_ip_address(const std::string& text) { return sdk::is_ipv4(text) || sdk::is_ipv6(text); }

}  // namespace

Status check_utf8(std::string_view flag, std::string_view text) {
  if (sdk::is_utf8(text)) return {};
  return Error(Errc::invalid_argument, "invalid " + std::string(flag) + " '" +
                                           util::printable(text, 200) + "': it is not UTF-8 text");
}

Result<KeyValue> parse_key_value(std::string_view flag, std::string_view text,
                                 std::string_view form) {
  if (auto st = check_utf8(flag, text); !st) return st.error();
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) return invalid(flag, text, form);
  return KeyValue{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

Result<EnvValue> parse_env_value(std::string_view text, std::string_view flag) {
  if (auto st = check_utf8(flag, text); !st) return st.error();
  size_t eq = text.find('=');
  std::string_view key = text.substr(0, eq);
  // A NUL would cut the name where the environment is looked up or set.
  if (key.empty() || key.find('\0') != std::string_view::npos) {
    return invalid(flag, text, "KEY=VALUE or KEY");
  }
  if (eq == std::string_view::npos) return EnvValue{std::string(key), "", true};
  return EnvValue{std::string(key), std::string(text.substr(eq + 1)), false};
}

Result<std::vector<PortPublish>> parse_publish(std::string_view text) {
  constexpr std::string_view kForm = "[[IP:]HOST:]CONTAINER[/tcp|udp|sctp], a port or a range";
  auto fail = [&] { return invalid("--publish", text, kForm); };
  if (auto st = check_utf8("--publish", text); !st) return st.error();
  std::string protocol = "tcp";
  std::string_view rest = text;
  if (auto slash = rest.rfind('/'); slash != std::string_view::npos) {
    protocol = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (protocol != "tcp" && protocol != "udp" && protocol != "sctp") return fail();
  }
  std::string_view container = rest;
  std::string_view host;
  std::string host_ip;
  if (auto last = rest.rfind(':'); last != std::string_view::npos) {
    container = rest.substr(last + 1);
    rest = rest.substr(0, last);
    host = rest;
    if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
      host = rest.substr(colon + 1);
      std::string_view ip = rest.substr(0, colon);
      if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') {
        ip = ip.substr(1, ip.size() - 2);
      }
      host_ip = std::string(ip);
      if (!is_ip_address(host_ip)) return fail();
    }
  }
  // FIRST or FIRST-LAST, LAST not below FIRST; {0, -1} for an empty HOST.
  auto range_of = [&](std::string_view ports, bool allow_empty) -> std::pair<int, int> {
    if (ports.empty()) return allow_empty ? std::pair{0, -1} : std::pair{-1, -1};
    auto dash = ports.find('-');
    int first = port_of(ports.substr(0, dash), false);
    int last = dash == std::string_view::npos ? first : port_of(ports.substr(dash + 1), false);
    if (first < 0 || last < first) return {-1, -1};
    return {first, last};
  };
  auto [host_first, host_last] = range_of(host, true);
  auto [first, last] = range_of(container, false);
  if (host_first < 0 || first < 0) return fail();
  // Docker also takes a HOST range for one CONTAINER port (any free port of
  // the range); its runners differ on that, so only equal lengths map.
  if (host_first != 0 && host_last - host_first != last - first) {
    return Error(Errc::invalid_argument,
                 "invalid --publish '" + util::printable(text) +
                     "': a HOST range needs a CONTAINER range of the same length");
  }
  std::vector<PortPublish> out;
  for (int port = first; port <= last; ++port) {
    PortPublish publish;
    publish.host_ip = host_ip;
    publish.host_port = host_first == 0 ? 0 : host_first + (port - first);
    publish.container_port = port;
    publish.protocol = protocol;
    out.push_back(std::move(publish));
  }
  return out;
}

Result<VolumeMount> parse_volume(std::string_view text, const std::string& cwd) {
  if (auto st = check_utf8("--volume", text); !st) return st.error();
  auto fail = [&](const std::string& why) {
    return Error(
        Errc::invalid_argument,
        "invalid --volume '" + util::printable(text) + "': " + why +
            " (expected [SOURCE:]TARGET[:ro|rw], SOURCE a host directory or a volume name)");
  };
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() > 3) return fail("it has more than three parts");
  VolumeMount mount;
  mount.type = "volume";
  std::string_view source;
  std::string_view target = parts.front();
  if (parts.size() >= 2) {
    source = parts[0];
    target = parts[1];
    if (source.empty()) return fail("SOURCE is empty");
  }
  if (parts.size() == 3) {
    if (parts[2] == "ro") {
      mount.read_only = true;
    } else if (parts[2] != "rw") {
      return fail("mode '" + util::printable(parts[2]) + "' is not ro or rw");
    }
  }
  if (target.empty() || target.front() != '/') return fail("TARGET is not an absolute path");
  mount.target = std::filesystem::path(target).lexically_normal().string();
  if (mount.target.size() > 1 && mount.target.back() == '/') mount.target.pop_back();
  if (mount.target == "/") return fail("TARGET cannot be /");
  if (!source.empty() && (source.front() == '/' || source.front() == '.')) {
    std::filesystem::path path(source);
    if (path.is_relative()) path = std::filesystem::path(cwd) / path;
    mount.type = "bind";
    mount.source = path.lexically_normal().string();
    if (mount.source.size() > 1 && mount.source.back() == '/') mount.source.pop_back();
  } else if (!source.empty()) {
    // Docker's volume name alphabet, the one of container names.
    if (!sdk::is_docker_container_name(source)) {
      return fail("SOURCE '" + util::printable(source) +
                  "' is neither a host directory (absolute, or starting with ./ or ../) nor a "
                  "volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)");
    }
    mount.source = std::string(source);
  }
  return mount;
}

Result<std::string> parse_cpu_set(std::string_view text) {
  auto fail = [&] {
    return invalid("--cpu-set", text, "CPU numbers and ranges such as 0-3 or 1,3");
  };
  if (text.empty()) return fail();
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t comma = std::min(text.find(',', start), text.size());
    std::string_view item = text.substr(start, comma - start);
    std::size_t dash = item.find('-');
    auto number = [](std::string_view digits) {
      if (digits.empty() || digits.size() > 4) return -1;
      int n = 0;
      for (char c : digits) {
        if (std::isdigit(static_cast<unsigned char>(c)) == 0) return -1;
        n = n * 10 + (c - '0');
      }
      return n;
    };
    int first = number(item.substr(0, dash));
    int last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
    if (first < 0 || last < first) return fail();
    start = comma + 1;
  }
  return std::string(text);
}

Result<std::string> parse_capability(std::string_view text) {
  std::string name;
  for (char c : text) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("CAP_", 0) == 0) name.erase(0, 4);
  const bool valid =
      !name.empty() && name.size() <= 40 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      });
  if (!valid) return invalid("--cap-add", text, "a capability such as SYS_PTRACE, or ALL");
  return name;
}

std::string PortPublish::to_string() const {
  std::string out;
  if (!host_ip.empty()) {
    out += host_ip.find(':') != std::string::npos ? "[" + host_ip + "]" : host_ip;
    out += ':';
  }
  if (host_port != 0) out += std::to_string(host_port);
  return out + ':' + std::to_string(container_port) + '/' + protocol;
}

Result<std::vector<std::string>> split_command_line(std::string_view flag, std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // an empty '' or "" is a word too
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::exchange(word, {}));
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (++i == text.size()) {
        return Error(Errc::invalid_argument,
                     std::string(flag) + ": a backslash ends the command line");
      }
      if (text[i] != '\n') word += text[i];  // backslash-newline joins lines
    } else if (c == '\'') {
      const auto end = text.find('\'', i + 1);
      if (end == std::string_view::npos) {
        return Error(Errc::invalid_argument, std::string(flag) + ": a ' is not closed");
      }
      word.append(text.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      for (++i;; ++i) {
        if (i == text.size()) {
          return Error(Errc::invalid_argument, std::string(flag) + ": a \" is not closed");
        }
        if (text[i] == '"') break;
        if (text[i] == '\\' && i + 1 < text.size() &&
            std::string_view("$`\"\\\n").find(text[i + 1]) != std::string_view::npos) {
          ++i;
          if (text[i] == '\n') continue;
        }
        word += text[i];
      }
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace envd::cli
