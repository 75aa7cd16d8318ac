#include "cli/flag_values.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "envd/address.hpp"
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

Result<PortPublish> parse_publish(std::string_view text) {
  auto fail = [&] { return invalid("--publish", text, "[IP:]HOST:CONTAINER[/tcp|udp|sctp]"); };
  PortPublish publish;
  std::string_view rest = text;
  if (auto slash = rest.rfind('/'); slash != std::string_view::npos) {
    publish.protocol = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (publish.protocol != "tcp" && publish.protocol != "udp" && publish.protocol != "sctp") {
      return fail();
    }
  }
  auto last = rest.rfind(':');
  if (last == std::string_view::npos) return fail();
  std::string_view container = rest.substr(last + 1);
  rest = rest.substr(0, last);
  std::string_view host = rest;
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(colon + 1);
    std::string_view ip = rest.substr(0, colon);
    if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    publish.host_ip = std::string(ip);
    if (!is_ip_address(publish.host_ip)) return fail();
  }
  publish.host_port = port_of(host, true);
  publish.container_port = port_of(container, false);
  if (publish.host_port < 0 || publish.container_port < 0) return fail();
  return publish;
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
