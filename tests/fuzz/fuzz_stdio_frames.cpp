// The Engine's multiplexed stdio frames, cut anywhere: the first byte picks
// where the rest is split, and the output must not depend on the split.
#include "envd/stdio_frames.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto rest = envd::fuzz::as_text(data + 1, size - 1);
  size_t cut = rest.empty() ? 0 : data[0] % (rest.size() + 1);
  std::string out;
  std::string err;
  envd::sdk::FrameDemuxer demuxer(
      [&](int stream, std::string_view piece) { (stream == 2 ? err : out).append(piece); });
  bool ok = demuxer.feed(rest.substr(0, cut));
  if (ok) demuxer.feed(rest.substr(cut));
  auto whole = envd::sdk::demux_all(rest);
  envd::fuzz::require(whole.out == out && whole.err == err, "the split changed the output");
  return 0;
}
