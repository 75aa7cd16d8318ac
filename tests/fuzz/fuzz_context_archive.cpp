// The context archive importer (tar, possibly compressed), on any bytes.
#include "context/archive.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = envd::context::parse_archive(envd::fuzz::as_text(data, size), "fuzz.tar");
  if (!parsed) {
    envd::fuzz::require_clean_message(parsed.error().message());
    return 0;
  }
  // Material never names a path outside the context's private directory.
  for (const auto& [path, content] : parsed->material) {
    envd::fuzz::require(!path.empty() && path.front() != '/', "absolute material path");
    envd::fuzz::require(path.find("..") == std::string::npos, "material path with '..'");
  }
  return 0;
}
