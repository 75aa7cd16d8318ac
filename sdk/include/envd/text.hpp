// Text from outside (daemons' answers, file contents, names a user typed)
// made safe to put into a one-line message: what envd and its modules quote
// back to the user goes through printable(), so it stays on one line and
// cannot drive the terminal.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace envd::sdk {

namespace text_detail {

// Length of the well-formed UTF-8 sequence starting at text[i], or 0. Rejects
// overlong forms, surrogates and code points above U+10FFFF.
inline std::size_t utf8_length(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t n = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    n = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    n = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    n = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return n;
}

}  // namespace text_detail

// Whether `text` is well-formed UTF-8 throughout: what JSON text and protobuf
// strings must hold. A value that is not (a Latin-1 byte a shell passed on)
// is refused where it is read, naming the flag, rather than written into
// JSON no parser would take back.
inline bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n = text_detail::utf8_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// `text` as one segment of a URL's path (RFC 3986): every byte but the
// unreserved letters, digits and - . _ ~ percent-encoded, so a name holding
// a quote, a slash or bytes of any encoding names one resource and no other.
inline std::string url_path_segment(std::string_view text) {
  constexpr const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Returns `text` with every control character (C0, DEL and the C1 range
// U+0080..U+009F) and every byte that is not part of well-formed UTF-8 written
// as \xNN per byte, so a message quoting it stays on one line and cannot drive
// the terminal. Once the output reaches `max_length` bytes the rest is cut and
// "..." appended.
inline std::string printable(std::string_view text,
                             std::size_t max_length = std::string_view::npos) {
  std::string out;
  auto escape = [&out](unsigned char c) {
    char buf[5];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  };
  for (std::size_t i = 0; i < text.size();) {
    if (out.size() >= max_length) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = text_detail::utf8_length(text, i);
    bool c1 = n == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0;
    if (n == 0 || c < 0x20 || c == 0x7f || c1) {
      std::size_t bytes = c1 ? 2 : 1;
      for (std::size_t k = 0; k < bytes; ++k) escape(static_cast<unsigned char>(text[i + k]));
      i += bytes;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

// What a daemon or a process said, for one line of a message: trailing line
// ends and spaces dropped, the line ends within it made spaces, the rest
// through printable() (an Engine's "OCI runtime exec failed: ...\r\n").
inline std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return printable(text);
}

// The labels of the PEM blocks in `text` ("CERTIFICATE", "RSA PRIVATE KEY"),
// in order, as views into it: what a file given as TLS material holds.
inline std::vector<std::string_view> pem_labels(std::string_view text) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  std::vector<std::string_view> labels;
  for (std::size_t at = text.find(kBegin); at != std::string_view::npos;
       at = text.find(kBegin, at + 1)) {
    std::size_t end = text.find("-----", at + kBegin.size());
    if (end == std::string_view::npos) break;
    labels.push_back(text.substr(at + kBegin.size(), end - at - kBegin.size()));
  }
  return labels;
}

// Whether a label of pem_labels() is of `kind`: "PRIVATE KEY" also takes
// "RSA PRIVATE KEY" and "EC PRIVATE KEY", "CERTIFICATE" "TRUSTED CERTIFICATE".
inline bool pem_label_is(std::string_view label, std::string_view kind) {
  return label.size() >= kind.size() && label.substr(label.size() - kind.size()) == kind;
}

// Docker's rule for container (and volume) names: [a-zA-Z0-9][a-zA-Z0-9_.-]+.
inline bool is_docker_container_name(std::string_view name) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (name.size() < 2 || !alnum(name.front())) return false;
  for (char c : name.substr(1)) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace envd::sdk
