// The store loader on a contexts.json anyone could have hand-edited: load()
// gives a list or one clean error line, never a crash, and reads only.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "context/store.hpp"
#include "fuzz_input.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    char tmpl[] = "/tmp/envd-fuzz-store-XXXXXX";
    return fs::path(::mkdtemp(tmpl));
  }();
  {
    std::ofstream out(dir / "contexts.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  envd::context::ContextStore store(dir);
  auto list = store.load();
  if (!list) envd::fuzz::require_clean_message(list.error().message());
  std::error_code ec;
  envd::fuzz::require(!fs::exists(dir / "contexts.d", ec), "load() wrote into the store");
  return 0;
}
