// Docker's config.json as the registry credential lookup reads it. No
// credential helper can run: PATH is an empty directory.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "envd/registry_auth.hpp"
#include "fuzz_input.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    char tmpl[] = "/tmp/envd-fuzz-docker-XXXXXX";
    fs::path made(::mkdtemp(tmpl));
    fs::create_directories(made / "empty-path");
    ::setenv("PATH", (made / "empty-path").c_str(), 1);
    return made;
  }();
  {
    std::ofstream out(dir / "config.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  envd::sdk::RegistryAuthOptions options;
  options.config_dir = dir;
  options.helper_timeout = std::chrono::milliseconds(200);
  for (const char* host : {"registry.example.com", "docker.io", "127.0.0.1:5000"}) {
    auto found = envd::sdk::lookup_registry_credentials(options, host);
    if (!found) envd::fuzz::require_clean_message(found.error().message());
  }
  return 0;
}
