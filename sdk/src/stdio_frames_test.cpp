// The Engine API's multiplexed stdio frames, split anywhere.
#include "envd/stdio_frames.hpp"

#include <gtest/gtest.h>

#include <string>

namespace envd::sdk {
namespace {

std::string frame(int stream, const std::string& payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  out[4] = static_cast<char>((payload.size() >> 24) & 0xff);
  out[5] = static_cast<char>((payload.size() >> 16) & 0xff);
  out[6] = static_cast<char>((payload.size() >> 8) & 0xff);
  out[7] = static_cast<char>(payload.size() & 0xff);
  return out + payload;
}

TEST(StdioFrames, DemultiplexesInAnySplit) {
  std::string big(70000, 'x');
  std::string data = frame(1, "hello ") + frame(2, "oops\n") + frame(1, big) + frame(1, "!");
  for (size_t step : {1u, 3u, 8u, 9u, 4096u, 1000000u}) {
    std::string out;
    std::string err;
    FrameDemuxer d([&](int s, std::string_view p) { (s == 2 ? err : out).append(p); });
    for (size_t i = 0; i < data.size(); i += step) {
      EXPECT_TRUE(d.feed(std::string_view(data).substr(i, step)));
    }
    EXPECT_EQ(out, "hello " + big + "!") << step;
    EXPECT_EQ(err, "oops\n") << step;
  }
  auto text = demux_all(frame(2, "e") + frame(1, "o"));
  EXPECT_EQ(text.out, "o");
  EXPECT_EQ(text.err, "e");
}

TEST(StdioFrames, StopsAtAMalformedHeader) {
  FrameDemuxer d([](int, std::string_view) {});
  EXPECT_FALSE(d.feed("HTTP/1.1 200 OK\r\n"));
}

}  // namespace
}  // namespace envd::sdk
