// The plugin manifest cache: derived data, so anything in the file is at
// worst ignored; never a crash, and what it yields is clean to show.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <boost/json.hpp>

#include "fuzz_input.hpp"
#include "plugin/descriptor.hpp"
#include "plugin/manifest_cache.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    char tmpl[] = "/tmp/envd-fuzz-manifest-XXXXXX";
    return fs::path(::mkdtemp(tmpl));
  }();
  fs::path file = dir / "plugins.json";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto cache = envd::plugin::ManifestCache::load(file);
  (void)cache.serialize();

  // One entry's facts as the cache keeps them: what comes back is as clean
  // as what a module's descriptor may say.
  boost::system::error_code ec;
  auto value = boost::json::parse(envd::fuzz::as_text(data, size), ec);
  if (ec || !value.is_object()) return 0;
  auto facts = envd::plugin::facts_from_json(value.as_object());
  if (!facts) return 0;
  envd::fuzz::require_clean_message(facts->type);
  envd::fuzz::require_clean_message(facts->version);
  envd::fuzz::require_clean_message(facts->description);
  envd::fuzz::require_clean_message(facts->reason);
  if (facts->ok) {
    envd::fuzz::require(envd::plugin::is_valid_type_name(facts->type), "a cached bad type name");
  }
  return 0;
}
