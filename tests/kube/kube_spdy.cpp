#include "kube_spdy.hpp"

#include <zlib.h>

#include <cstdio>
#include <cstdlib>

namespace envd::test::kube::spdy {
namespace {

// Control frames carry small payloads; a header block inflates to little more.
constexpr std::size_t kMaxControlLength = 1 << 20;
constexpr std::size_t kMaxHeaderBlock = 1 << 20;

std::uint32_t be32(std::string_view b, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

void put32(std::string& out, std::uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16 & 0xff);
  out += static_cast<char>(v >> 8 & 0xff);
  out += static_cast<char>(v & 0xff);
}

std::string control_header(Type type, std::uint8_t flags, std::size_t length) {
  std::string out;
  put32(out, 0x80000000U | static_cast<std::uint32_t>(kVersion) << 16 |
                 static_cast<std::uint32_t>(type));
  put32(out, static_cast<std::uint32_t>(flags) << 24 | static_cast<std::uint32_t>(length));
  return out;
}

// The SPDY/3 draft's dictionary: these names, each after its length as four
// big-endian bytes, then the tail as it is.
std::string build_dictionary() {
  static const char* const kWords[] = {
      "options",
      "head",
      "post",
      "put",
      "delete",
      "trace",
      "accept",
      "accept-charset",
      "accept-encoding",
      "accept-language",
      "accept-ranges",
      "age",
      "allow",
      "authorization",
      "cache-control",
      "connection",
      "content-base",
      "content-encoding",
      "content-language",
      "content-length",
      "content-location",
      "content-md5",
      "content-range",
      "content-type",
      "date",
      "etag",
      "expect",
      "expires",
      "from",
      "host",
      "if-match",
      "if-modified-since",
      "if-none-match",
      "if-range",
      "if-unmodified-since",
      "last-modified",
      "location",
      "max-forwards",
      "pragma",
      "proxy-authenticate",
      "proxy-authorization",
      "range",
      "referer",
      "retry-after",
      "server",
      "te",
      "trailer",
      "transfer-encoding",
      "upgrade",
      "user-agent",
      "vary",
      "via",
      "warning",
      "www-authenticate",
      "method",
      "get",
      "status",
      "200 OK",
      "version",
      "HTTP/1.1",
      "url",
      "public",
      "set-cookie",
      "keep-alive",
      "origin",
  };
  static const char* const kTail[] = {
      "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
      "203 Non-Authoritative Information",
      "204 No Content",
      "301 Moved Permanently",
      "400 Bad Request",
      "401 Unauthorized",
      "403 Forbidden",
      "404 Not Found",
      "500 Internal Server Error",
      "501 Not Implemented",
      "503 Service Unavailable",
      "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
      "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
      "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
      "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch",
      "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
  };
  std::string out;
  for (const char* word : kWords) {
    std::string_view w(word);
    put32(out, static_cast<std::uint32_t>(w.size()));
    out += w;
  }
  for (const char* part : kTail) out += part;
  // The client checks the dictionary's Adler-32 against the one in our zlib
  // header, so a wrong byte here would break every connection.
  if (out.size() != 1423 ||
      ::adler32(::adler32(0, nullptr, 0), reinterpret_cast<const Bytef*>(out.data()),
                static_cast<uInt>(out.size())) != 0xe3c6a7c2UL) {
    std::fprintf(stderr, "kube_apiserver: the SPDY/3 dictionary is corrupt\n");
    std::abort();
  }
  return out;
}

FrameError session_error(std::string message) {
  return FrameError{true, 0, RstStatus::protocol_error, std::move(message)};
}

FrameError stream_error(std::uint32_t id, RstStatus status, std::string message) {
  return FrameError{false, id, status, std::move(message)};
}

// Parses an inflated header block; a malformed one is the stream's error.
std::optional<Headers> parse_headers(std::string_view b, std::string* why) {
  Headers out;
  std::size_t at = 0;
  // A length (or the count) and, for a length, that many bytes after it.
  auto take_length = [&](std::uint32_t* n, bool count) {
    if (b.size() - at < 4) return false;
    *n = be32(b, at);
    at += 4;
    return count || b.size() - at >= *n;
  };
  std::uint32_t count = 0;
  if (!take_length(&count, true)) {
    *why = "header block without its count";
    return std::nullopt;
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t n = 0;
    if (!take_length(&n, false)) {
      *why = "header block ends inside a name";
      return std::nullopt;
    }
    std::string name(b.substr(at, n));
    at += n;
    if (name.empty()) {
      *why = "empty header name";
      return std::nullopt;
    }
    for (char c : name) {
      if (c >= 'A' && c <= 'Z') {
        *why = "header name '" + name + "' is not lowercase";
        return std::nullopt;
      }
      if (c == '\0') {
        *why = "header name with a NUL";
        return std::nullopt;
      }
    }
    if (out.count(name) != 0) {
      *why = "header '" + name + "' twice";
      return std::nullopt;
    }
    if (!take_length(&n, false)) {
      *why = "header block ends inside the value of '" + name + "'";
      return std::nullopt;
    }
    std::string_view value = b.substr(at, n);
    at += n;
    std::vector<std::string> values;
    if (value.empty()) {
      values.emplace_back();
    } else {
      std::size_t start = 0;
      for (;;) {
        auto nul = value.find('\0', start);
        auto part = value.substr(start, nul == std::string_view::npos ? nul : nul - start);
        if (part.empty()) {
          *why = "header '" + name + "' has an empty value among several";
          return std::nullopt;
        }
        values.emplace_back(part);
        if (nul == std::string_view::npos) break;
        start = nul + 1;
      }
    }
    out.emplace(std::move(name), std::move(values));
  }
  if (at != b.size()) {
    *why = "bytes after the last header";
    return std::nullopt;
  }
  return out;
}

std::string encode_headers(const Headers& headers) {
  std::string out;
  put32(out, static_cast<std::uint32_t>(headers.size()));
  for (const auto& [name, values] : headers) {
    put32(out, static_cast<std::uint32_t>(name.size()));
    out += name;
    std::string joined;
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) joined += '\0';
      joined += values[i];
    }
    put32(out, static_cast<std::uint32_t>(joined.size()));
    out += joined;
  }
  return out;
}

}  // namespace

std::string_view header_dictionary() {
  static const std::string dictionary = build_dictionary();
  return dictionary;
}

// --- decoding ------------------------------------------------------------------------------------

Decoder::Decoder() : zlib_(std::make_unique<z_stream_s>()) {
  if (::inflateInit(zlib_.get()) != Z_OK) std::abort();
}

Decoder::~Decoder() { ::inflateEnd(zlib_.get()); }

std::optional<std::string> Decoder::inflate(std::string_view block, std::string* why) {
  z_stream& z = *zlib_;
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z.avail_in = static_cast<uInt>(block.size());
  unsigned char chunk[4096];
  for (;;) {
    z.next_out = chunk;
    z.avail_out = sizeof chunk;
    int rc = ::inflate(&z, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      auto dict = header_dictionary();
      rc = ::inflateSetDictionary(&z, reinterpret_cast<const Bytef*>(dict.data()),
                                  static_cast<uInt>(dict.size()));
      if (rc != Z_OK) {
        *why = "header block compressed with another dictionary";
        return std::nullopt;
      }
      continue;
    }
    out.append(reinterpret_cast<char*>(chunk), sizeof chunk - z.avail_out);
    if (out.size() > kMaxHeaderBlock) {
      *why = "header block inflates past " + std::to_string(kMaxHeaderBlock) + " bytes";
      return std::nullopt;
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // all used, nothing pending
    if (rc != Z_OK) {
      *why = rc == Z_STREAM_END ? "header compression stream ended"
                                : std::string("header block does not inflate: ") +
                                      (z.msg != nullptr ? z.msg : "zlib error");
      return std::nullopt;
    }
    if (z.avail_in == 0 && z.avail_out != 0) break;
  }
  return out;
}

std::size_t Decoder::decode(std::string_view bytes, Frame* frame,
                            std::optional<FrameError>* error) {
  if (bytes.size() < 8) return 0;
  *frame = Frame{};
  error->reset();
  std::uint32_t first = be32(bytes, 0);
  std::uint32_t second = be32(bytes, 4);
  frame->flags = static_cast<std::uint8_t>(second >> 24);
  std::size_t length = second & 0xffffff;
  frame->control = (first & 0x80000000U) != 0;
  if (!frame->control) {
    if (bytes.size() < 8 + length) return 0;
    frame->stream_id = first & 0x7fffffff;
    frame->data.assign(bytes.substr(8, length));
    if (frame->stream_id == 0) {
      *error = session_error("DATA frame on stream 0");
    } else if ((frame->flags & ~kFlagFin) != 0) {
      *error = stream_error(frame->stream_id, RstStatus::protocol_error,
                            "DATA frame with unknown flags " + std::to_string(frame->flags));
    }
    return 8 + length;
  }
  auto version = static_cast<std::uint16_t>(first >> 16 & 0x7fff);
  frame->type = static_cast<std::uint16_t>(first & 0xffff);
  if (length > kMaxControlLength) {
    *error = session_error("control frame of " + std::to_string(length) + " bytes");
    return 8;
  }
  if (bytes.size() < 8 + length) return 0;
  std::size_t size = 8 + length;
  std::string_view p = bytes.substr(8, length);
  if (version != kVersion) {
    *error = session_error("SPDY version " + std::to_string(version) + " frame; this is SPDY/3.1");
    return size;
  }
  auto bad = [&](const std::string& what) {
    *error = session_error(what);
    return size;
  };
  auto flags_allowed = [&](std::uint8_t allowed) { return (frame->flags & ~allowed) == 0; };
  // SYN_STREAM, SYN_REPLY and HEADERS: the block is inflated whatever else is
  // wrong, so that the compression context stays in step with the client's.
  auto header_block = [&](std::size_t offset) {
    std::string why;
    auto block = inflate(p.substr(offset), &why);
    if (!block) return bad(why);
    auto headers = parse_headers(*block, &why);
    if (!headers) {
      *error = stream_error(frame->stream_id, RstStatus::protocol_error, why);
    } else {
      frame->headers = std::move(*headers);
    }
    return size;
  };

  switch (static_cast<Type>(frame->type)) {
    case Type::syn_stream: {
      if (length < 10) return bad("SYN_STREAM of " + std::to_string(length) + " bytes");
      frame->stream_id = be32(p, 0) & 0x7fffffff;
      frame->associated_id = be32(p, 4) & 0x7fffffff;
      frame->priority = static_cast<std::uint8_t>(static_cast<unsigned char>(p[8]) >> 5);
      if (frame->stream_id == 0) return bad("SYN_STREAM for stream 0");
      std::size_t used = header_block(10);
      if (!*error && !flags_allowed(kFlagFin | kFlagUnidirectional)) {
        *error = stream_error(frame->stream_id, RstStatus::protocol_error,
                              "SYN_STREAM with unknown flags");
      }
      return used;
    }
    case Type::syn_reply:
    case Type::headers: {
      if (length < 4)
        return bad("control frame of type " + std::to_string(frame->type) + " and " +
                   std::to_string(length) + " bytes");
      frame->stream_id = be32(p, 0) & 0x7fffffff;
      if (frame->stream_id == 0) return bad("SYN_REPLY or HEADERS for stream 0");
      std::size_t used = header_block(4);
      if (!*error && !flags_allowed(kFlagFin)) {
        *error = stream_error(frame->stream_id, RstStatus::protocol_error,
                              "SYN_REPLY or HEADERS with unknown flags");
      }
      return used;
    }
    case Type::rst_stream:
      if (length != 8 || frame->flags != 0) return bad("malformed RST_STREAM");
      frame->stream_id = be32(p, 0) & 0x7fffffff;
      frame->status = be32(p, 4);
      if (frame->stream_id == 0 || frame->status == 0)
        return bad("RST_STREAM for stream 0 or status 0");
      return size;
    case Type::settings: {
      if (length < 4 || !flags_allowed(0x01)) return bad("malformed SETTINGS");
      std::uint32_t count = be32(p, 0);
      if (length != 4 + 8 * static_cast<std::size_t>(count)) {
        return bad("SETTINGS of " + std::to_string(length) + " bytes for " + std::to_string(count) +
                   " entries");
      }
      for (std::uint32_t i = 0; i < count; ++i) {
        frame->settings.emplace_back(be32(p, 4 + 8 * i), be32(p, 8 + 8 * i));
      }
      return size;
    }
    case Type::ping:
      if (length != 4 || frame->flags != 0) return bad("malformed PING");
      frame->value = be32(p, 0);
      return size;
    case Type::goaway:
      if (length != 8 || frame->flags != 0) return bad("malformed GOAWAY");
      frame->stream_id = be32(p, 0) & 0x7fffffff;
      frame->status = be32(p, 4);
      return size;
    case Type::window_update:
      if (length != 8 || frame->flags != 0) return bad("malformed WINDOW_UPDATE");
      frame->stream_id = be32(p, 0) & 0x7fffffff;
      frame->value = be32(p, 4) & 0x7fffffff;
      if (frame->value == 0 && frame->stream_id == 0) return bad("WINDOW_UPDATE of 0 bytes");
      if (frame->value == 0) {
        *error = stream_error(frame->stream_id, RstStatus::flow_control_error,
                              "WINDOW_UPDATE of 0 bytes");
      }
      return size;
  }
  return size;  // a type this draft does not know: to be ignored, as it says
}

// --- encoding ------------------------------------------------------------------------------------

Encoder::Encoder() : zlib_(std::make_unique<z_stream_s>()) {
  auto dict = header_dictionary();
  if (::deflateInit(zlib_.get(), Z_BEST_COMPRESSION) != Z_OK ||
      ::deflateSetDictionary(zlib_.get(), reinterpret_cast<const Bytef*>(dict.data()),
                             static_cast<uInt>(dict.size())) != Z_OK) {
    std::abort();
  }
}

Encoder::~Encoder() { ::deflateEnd(zlib_.get()); }

std::string Encoder::deflate(const std::string& block) {
  z_stream& z = *zlib_;
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z.avail_in = static_cast<uInt>(block.size());
  unsigned char chunk[4096];
  do {
    z.next_out = chunk;
    z.avail_out = sizeof chunk;
    ::deflate(&z, Z_SYNC_FLUSH);
    out.append(reinterpret_cast<char*>(chunk), sizeof chunk - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

std::string Encoder::syn_reply(std::uint32_t stream_id, const Headers& headers, bool fin) {
  std::string block = deflate(encode_headers(headers));
  std::string out = control_header(Type::syn_reply, fin ? kFlagFin : 0, 4 + block.size());
  put32(out, stream_id & 0x7fffffff);
  return out + block;
}

std::string Encoder::syn_stream(std::uint32_t stream_id, const Headers& headers, bool fin) {
  std::string block = deflate(encode_headers(headers));
  std::string out = control_header(Type::syn_stream, fin ? kFlagFin : 0, 10 + block.size());
  put32(out, stream_id & 0x7fffffff);
  put32(out, 0);  // associated-to-stream-id
  out += '\0';    // priority 0 (highest), unused bits
  out += '\0';    // slot
  return out + block;
}

std::string Encoder::data(std::uint32_t stream_id, std::string_view data, bool fin) {
  if (data.size() > 0xffffff || stream_id == 0) std::abort();
  std::string out;
  put32(out, stream_id & 0x7fffffff);
  put32(out, static_cast<std::uint32_t>(fin ? kFlagFin : 0) << 24 |
                 static_cast<std::uint32_t>(data.size()));
  out += data;
  return out;
}

std::string Encoder::rst_stream(std::uint32_t stream_id, RstStatus status) {
  std::string out = control_header(Type::rst_stream, 0, 8);
  put32(out, stream_id & 0x7fffffff);
  put32(out, static_cast<std::uint32_t>(status));
  return out;
}

std::string Encoder::goaway(std::uint32_t last_good_stream_id, GoAwayStatus status) {
  std::string out = control_header(Type::goaway, 0, 8);
  put32(out, last_good_stream_id & 0x7fffffff);
  put32(out, static_cast<std::uint32_t>(status));
  return out;
}

std::string Encoder::ping(std::uint32_t id) {
  std::string out = control_header(Type::ping, 0, 4);
  put32(out, id);
  return out;
}

}  // namespace envd::test::kube::spdy
