// The checks the core runs on a module's descriptor before calling anything
// in it, on a descriptor made of fuzzed fields (an in-process fake module):
// versions, kind, sizes, type name, description, file options. The module
// may lie about anything but the memory it really has, so struct sizes are
// capped at the real ones.
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "plugin/descriptor.hpp"

namespace {

envd_status in_out(const char*, char**, char**) { return ENVD_OK; }
envd_status in_only(const char*, char**) { return ENVD_OK; }
envd_status dial(const char*, envd_transport*, char**) { return ENVD_ERR_UNSUPPORTED; }
void free_string(char* s) { std::free(s); }

// Reads fields off the front of the input.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint32_t number() {
    uint32_t value = 0;
    for (int i = 0; i < 4 && at_ < size_; ++i) value = (value << 8) | data_[at_++];
    return value;
  }
  std::string text() {  // up to the next NUL
    std::string out;
    while (at_ < size_ && data_[at_] != 0) out += static_cast<char>(data_[at_++]);
    if (at_ < size_) ++at_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  envd_builder_vtable builder{};
  builder.struct_size = std::min<uint32_t>(in.number(), sizeof builder);
  uint32_t present = in.number();
  builder.normalize_address = (present & 1) != 0 ? in_out : nullptr;
  builder.normalize_options = (present & 2) != 0 ? in_out : nullptr;
  builder.dial = (present & 4) != 0 ? dial : nullptr;
  builder.status = (present & 8) != 0 ? in_out : nullptr;
  builder.bootstrap = (present & 16) != 0 ? in_out : nullptr;
  builder.stop = (present & 32) != 0 ? in_only : nullptr;
  builder.remove = (present & 64) != 0 ? in_only : nullptr;
  envd_runner_vtable runner{};
  runner.struct_size = std::min<uint32_t>(in.number(), sizeof runner);
  runner.normalize_address = (present & 128) != 0 ? in_out : nullptr;
  runner.normalize_options = in_out;
  runner.create = in_out;
  runner.list = in_out;
  runner.inspect = (present & 256) != 0 ? in_out : nullptr;
  runner.remove = in_only;

  std::string type = in.text();
  std::string version = in.text();
  std::string description = in.text();
  std::vector<std::string> option_texts;
  uint32_t options = in.number() % 20;
  for (uint32_t i = 0; i < options; ++i) option_texts.push_back(in.text());
  std::vector<const char*> option_ptrs;
  for (const auto& t : option_texts) option_ptrs.push_back(t.c_str());
  option_ptrs.push_back(nullptr);

  envd_plugin_descriptor d{};
  d.abi_major = static_cast<uint16_t>(in.number());
  d.abi_minor = static_cast<uint16_t>(in.number());
  d.struct_size = std::min<uint32_t>(in.number(), sizeof d);
  d.kind = static_cast<int32_t>(in.number());
  d.type_name = (present & 512) != 0 ? type.c_str() : nullptr;
  d.version = (present & 1024) != 0 ? version.c_str() : nullptr;
  d.description = (present & 2048) != 0 ? description.c_str() : nullptr;
  d.maturity = static_cast<int32_t>(in.number());
  d.free_string = (present & 4096) != 0 ? free_string : nullptr;
  d.builder = (present & 8192) != 0 ? &builder : nullptr;
  d.runner = (present & 16384) != 0 ? &runner : nullptr;
  d.file_options = (present & 32768) != 0 ? option_ptrs.data() : nullptr;
  d.set_host = nullptr;

  auto info = envd::plugin::describe_descriptor(&d);
  envd::fuzz::require_clean_message(info.reason);
  if (info.ok) {
    envd::fuzz::require(envd::plugin::is_valid_type_name(info.type), "accepted a bad type name");
    for (const auto& key : envd::plugin::file_options(&d)) envd::fuzz::require_clean_message(key);
    envd::fuzz::require_clean_message(info.description);
    envd::fuzz::require_clean_message(info.version);
  }
  return 0;
}
