// The values of --build-arg, --builder-opt, -e/--env, -p/--publish and the
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
  require(parsed->host_port >= 0 && parsed->host_port <= 65535, "a host port out of range");
  require(parsed->container_port >= 1 && parsed->container_port <= 65535,
          "a container port out of range");
  require(parsed->protocol == "tcp" || parsed->protocol == "udp" || parsed->protocol == "sctp",
          "an unknown protocol");
  for (unsigned char c : parsed->host_ip) {
    require(std::isxdigit(c) != 0 || c == '.' || c == ':', "a host IP that is not an address");
  }
  auto again = cli::parse_publish(parsed->to_string());
  require(
      again.ok() && again->host_ip == parsed->host_ip && again->host_port == parsed->host_port &&
          again->container_port == parsed->container_port && again->protocol == parsed->protocol,
      "a --publish value does not parse back to itself");
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
  switch (data[0] % 5) {
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
    default:
      check_size(value);
      break;
  }
  return 0;
}
