// SPDY/3.1 framing for the exec subresource of envd_test_kube_apiserver, the
// server's half of what kubectl before 1.30 (and a later one whose WebSocket
// upgrade failed) speaks to a kubelet, plus the SYN_STREAM a test's raw
// client sends: frames decoded from and encoded to bytes, header blocks
// through the connection's two zlib contexts (one each way) primed with the
// SPDY/3 dictionary. No I/O: kube_spdy_exec.cpp drives it. Checks what the
// SPDY/3 draft requires of a peer (frame lengths and flags, control frame
// version 3, lowercase unique header names, no empty header values) and
// reports a violation as the session or stream error the draft names.
// Test-only; not thread-safe (one connection, one thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct z_stream_s;

namespace envd::test::kube::spdy {

constexpr std::uint16_t kVersion = 3;

// Control frame types.
enum class Type : std::uint16_t {
  syn_stream = 1,
  syn_reply = 2,
  rst_stream = 3,
  settings = 4,
  ping = 6,
  goaway = 7,
  headers = 8,
  window_update = 9,
};

constexpr std::uint8_t kFlagFin = 0x01;             // DATA, SYN_STREAM, SYN_REPLY, HEADERS
constexpr std::uint8_t kFlagUnidirectional = 0x02;  // SYN_STREAM

enum class RstStatus : std::uint32_t {
  protocol_error = 1,
  invalid_stream = 2,
  refused_stream = 3,
  unsupported_version = 4,
  cancel = 5,
  internal_error = 6,
  flow_control_error = 7,
  stream_in_use = 8,
  stream_already_closed = 9,
  frame_too_large = 11,
};

enum class GoAwayStatus : std::uint32_t { ok = 0, protocol_error = 1, internal_error = 2 };

// A header block: lowercase names, each with one or more values (NUL-joined on the wire).
using Headers = std::map<std::string, std::vector<std::string>>;

struct Frame {
  bool control = false;
  std::uint16_t type = 0;  // a control frame's Type (unknown types are reported too)
  std::uint8_t flags = 0;
  // The stream of DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS and
  // WINDOW_UPDATE (0: the session's window); GOAWAY's last good stream.
  std::uint32_t stream_id = 0;
  std::uint32_t associated_id = 0;  // SYN_STREAM
  std::uint8_t priority = 0;        // SYN_STREAM, 0 (highest) to 7
  std::uint32_t status = 0;         // RST_STREAM, GOAWAY
  std::uint32_t value = 0;          // PING's id, WINDOW_UPDATE's delta
  std::vector<std::pair<std::uint32_t, std::uint32_t>>
      settings;      // SETTINGS: (flags << 24 | id, value)
  Headers headers;   // SYN_STREAM, SYN_REPLY, HEADERS
  std::string data;  // DATA
};

// A frame the peer should not have sent: a session error (answer GOAWAY with
// PROTOCOL_ERROR, then close) or an error of one stream (answer RST_STREAM
// with `status` on `stream_id`; the session goes on).
struct FrameError {
  bool session = true;
  std::uint32_t stream_id = 0;
  RstStatus status = RstStatus::protocol_error;
  std::string message;
};

// The SPDY/3 header compression dictionary (1423 bytes).
std::string_view header_dictionary();

// Decodes the frames a client sends, in order.
class Decoder {
 public:
  Decoder();
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes the frame at the start of `bytes`. Returns 0 when `bytes` does
  // not hold all of it yet (nothing set); else its size, with *frame set, and
  // *error set if it breaks the protocol (after a session error the decoder's
  // compression state is lost: decode nothing more).
  std::size_t decode(std::string_view bytes, Frame* frame, std::optional<FrameError>* error);

 private:
  std::optional<std::string> inflate(std::string_view block, std::string* why);

  std::unique_ptr<z_stream_s> zlib_;
};

// Encodes the frames a server sends.
class Encoder {
 public:
  Encoder();
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Frames must go on the wire in the order syn_reply() and syn_stream()
  // made them: the header blocks share one compression context. Header names
  // go as given (a test may send what the draft forbids).
  std::string syn_reply(std::uint32_t stream_id, const Headers& headers, bool fin);
  // For a client (the tests): opens a stream.
  std::string syn_stream(std::uint32_t stream_id, const Headers& headers, bool fin);
  std::string data(std::uint32_t stream_id, std::string_view data, bool fin);
  std::string rst_stream(std::uint32_t stream_id, RstStatus status);
  std::string goaway(std::uint32_t last_good_stream_id, GoAwayStatus status);
  std::string ping(std::uint32_t id);

 private:
  std::string deflate(const std::string& block);

  std::unique_ptr<z_stream_s> zlib_;
};

}  // namespace envd::test::kube::spdy
