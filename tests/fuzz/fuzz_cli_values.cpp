// The values of --build-arg, --builder-opt, -e/--env, -p/--publish, -v/--volume and the
// size flags (--memory, --keep-storage): the first byte of the input picks the
// flag, the rest is its value. What is accepted gives the value back; what is
// refused is one clean line.
#include <cctype>
#include <string>
#include <string_view>

#include "cli/flag_values.hpp"
#include "cli/size_flag.hpp"
#include "fuzz_input.hpp"

namespace cli = envd::cli;
using envd::fuzz::require;
using envd::fuzz::require_clean_message;

namespace {

void check_key_value(std::string_view flag, std::string_view text) {
  auto parsed = cli::parse_key_value(flag, text);
  if (!parsed) return require_clean_message(parsed.error().message());
  require(!parsed->key.empty() && parsed->key.find('=') == std::string::npos,
          "a KEY is empty or holds '='");
  require(parsed->key + "=" + parsed->value == text, "KEY=VALUE does not give the value back");
}

void check_env(std::string_view text) {
  auto parsed = cli::parse_env_value(text);
  if (!parsed) return require_clean_message(parsed.error().message());
  require(
      !parsed->key.empty() && parsed->key.find_first_of(std::string("=\0", 2)) == std::string::npos,
      "an --env KEY is empty or holds '=' or NUL");
  if (parsed->bare) {
    require(parsed->key == text && parsed->value.empty(), "a bare --env KEY is not the value");
  } else {
    require(parsed->key + "=" + parsed->value == text, "--env does not give the value back");
  }
}

void check_publish(std::string_view text) {
  auto parsed = cli::parse_publish(text);
  if (!parsed) return require_clean_message(parsed.error().message());
  require(!parsed->empty(), "an accepted --publish publishes nothing");
  for (const auto& one : *parsed) {
    require(one.host_port >= 0 && one.host_port <= 65535, "a host port out of range");
    require(one.container_port >= 1 && one.container_port <= 65535,
            "a container port out of range");
    require(one.protocol == "tcp" || one.protocol == "udp" || one.protocol == "sctp",
            "an unknown protocol");
    for (unsigned char c : one.host_ip) {
      require(std::isxdigit(c) != 0 || c == '.' || c == ':', "a host IP that is not an address");
    }
    auto again = cli::parse_publish(one.to_string());
    require(again.ok() && again->size() == 1 && again->front().host_ip == one.host_ip &&
                again->front().host_port == one.host_port &&
                again->front().container_port == one.container_port &&
                again->front().protocol == one.protocol,
            "a --publish value does not parse back to itself");
  }
}

void check_volume(std::string_view text) {
  auto parsed = cli::parse_volume(text, "/work");
  if (!parsed) return require_clean_message(parsed.error().message());
  require(parsed->type == "bind" || parsed->type == "volume", "an unknown volume type");
  require(parsed->target.size() > 1 && parsed->target.front() == '/',
          "a TARGET that is not an absolute path other than /");
  require(parsed->type != "bind" || parsed->source.front() == '/',
          "a bind SOURCE that is not absolute");
  require(parsed->target.find(':') == std::string::npos &&
              parsed->source.find(':') == std::string::npos,
          "a part holding ':'");
}

void check_size(const std::string& text) {
  auto bytes = cli::parse_size_flag(text, "--memory");
  if (!bytes) return require_clean_message(bytes.error().message());
  require(*bytes >= 0, "a size is negative");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string value(envd::fuzz::as_text(data + 1, size - 1));
  switch (data[0] % 6) {
    case 0:
      check_key_value("--build-arg", value);
      break;
    case 1:
      check_key_value("--builder-opt", value);
      break;
    case 2:
      check_env(value);
      break;
    case 3:
      check_publish(value);
      break;
    case 5:
      check_volume(value);
      break;
    default:
      check_size(value);
      break;
  }
  return 0;
}
