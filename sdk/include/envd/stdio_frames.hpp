// The Engine API's multiplexed stdio stream (exec and logs of a container
// without a TTY): frames of an 8-byte header {stream, 0, 0, 0, size as 32-bit
// big endian} followed by `size` bytes of stream 1 (stdout) or 2 (stderr).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace envd::sdk {

class FrameDemuxer {
 public:
  // Called with each piece of a frame's payload as it arrives; stream is 0
  // (stdin, never sent by dockerd), 1 (stdout) or 2 (stderr).
  using Sink = std::function<void(int stream, std::string_view data)>;

  explicit FrameDemuxer(Sink sink) : sink_(std::move(sink)) {}

  // Feeds bytes in any split; payloads go to the sink without waiting for a
  // whole frame. Returns false once a header is malformed (stream > 2): the
  // rest is then not stdio frames and should be dropped.
  bool feed(std::string_view data);

 private:
  Sink sink_;
  unsigned char header_[8]{};
  std::size_t header_size_ = 0;
  std::uint32_t remaining_ = 0;
  int stream_ = 0;
  bool broken_ = false;
};

// Demultiplexes a whole buffer: stdout and stderr concatenated separately.
struct StdioText {
  std::string out;
  std::string err;
};
StdioText demux_all(std::string_view data);

}  // namespace envd::sdk
