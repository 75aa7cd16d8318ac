// Context names, as typed on a command line or found in a store.
#include "context/context.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto name = envd::fuzz::as_text(data, size);
  auto valid = envd::context::validate_name(name);
  if (!valid) {
    envd::fuzz::require_clean_message(valid.error().message());
    return 0;
  }
  // A valid name is safe as a file name and on a terminal.
  envd::fuzz::require(!name.empty() && name != "." && name != "..", "a dot name passed");
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    envd::fuzz::require(c != '/' && u >= 0x20 && u != 0x7f, "a valid name holds '/' or a control");
  }
  return 0;
}
