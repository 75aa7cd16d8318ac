// --output values (buildx's CSV grammar).
#include "fuzz_input.hpp"
#include "output/output_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envd::fuzz::as_text(data, size);
  for (bool terminal : {false, true}) {
    auto spec = envd::output::parse_output(text, terminal);
    if (!spec) envd::fuzz::require_clean_message(spec.error().message());
  }
  return 0;
}
