#include "envd/stdio_frames.hpp"

#include <algorithm>

namespace envd::sdk {

bool FrameDemuxer::feed(std::string_view data) {
  while (!data.empty() && !broken_) {
    if (remaining_ == 0) {
      std::size_t take = std::min(sizeof header_ - header_size_, data.size());
      std::copy_n(data.begin(), take, header_ + header_size_);
      header_size_ += take;
      data.remove_prefix(take);
      if (header_size_ < sizeof header_) break;
      header_size_ = 0;
      if (header_[0] > 2) {
        broken_ = true;
        break;
      }
      stream_ = header_[0];
      remaining_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                   (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
      continue;
    }
    std::size_t take = std::min<std::size_t>(remaining_, data.size());
    sink_(stream_, data.substr(0, take));
    remaining_ -= static_cast<std::uint32_t>(take);
    data.remove_prefix(take);
  }
  return !broken_;
}

StdioText demux_all(std::string_view data) {
  StdioText text;
  FrameDemuxer demuxer([&](int stream, std::string_view piece) {
    (stream == 2 ? text.err : text.out).append(piece);
  });
  demuxer.feed(data);
  return text;
}

}  // namespace envd::sdk
