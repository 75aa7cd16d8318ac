// The store loader on a contexts.json anyone could have hand-edited: load()
// gives a list or one clean error line, never a crash, and reads only. And
// its two readers agree: whatever the one-pass reader accepts, the tree
// reader reads to an equal list (context/store_parse.hpp).
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "context/store.hpp"
#include "context/store_parse.hpp"
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

  std::string_view text = envd::fuzz::as_text(data, size);
  if (auto one_pass = envd::context::read_store_in_one_pass(text)) {
    auto tree = envd::context::read_store_tree(text, store.file());
    envd::fuzz::require(tree.ok(), "the one-pass reader accepted what the tree reader refuses");
    envd::fuzz::require(one_pass->current == tree->current &&
                            one_pass->contexts == tree->contexts && tree->unknown_fields.empty(),
                        "the one-pass reader and the tree reader read different lists");
  }
  return 0;
}
