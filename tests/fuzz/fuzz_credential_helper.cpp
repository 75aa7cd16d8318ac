// What a docker-credential-* helper prints, as the registry credential lookup
// reads it. The first byte of the input says how the helper ended (exit 0,
// exit 1, killed at the deadline, killed by a signal); the rest is its stdout,
// then "\n--\n" and its stderr. A refusal is one clean line and never quotes
// the secret of an answer that succeeded.
#include <boost/json.hpp>
#include <chrono>
#include <string>

#include "credential_helper.hpp"
#include "fuzz_input.hpp"

namespace sdk = envd::sdk;
using envd::fuzz::require;

namespace {

// The Secret of an answer that is a JSON object, or "".
std::string secret_in(const std::string& out) {
  boost::system::error_code ec;
  auto value = boost::json::parse(out, ec);
  if (ec || !value.is_object()) return {};
  const auto* secret = value.as_object().if_contains("Secret");
  return secret != nullptr && secret->is_string() ? std::string(secret->as_string()) : "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto [out, err] = envd::fuzz::split_once(envd::fuzz::as_text(data + 1, size - 1));
  sdk::ProcessResult ran;
  ran.out = std::string(out);
  ran.err = std::string(err);
  switch (data[0] % 4) {
    case 0:
      ran.exit_code = 0;
      break;
    case 1:
      ran.exit_code = 1;
      break;
    case 2:
      ran.timed_out = true;
      break;
    default:
      ran.term_signal = 9;
      break;
  }
  auto creds =
      sdk::helper_answer("fuzz", "registry.example.com", ran, std::chrono::milliseconds(200));
  if (!creds) {
    envd::fuzz::require_clean_message(creds.error().message());
    if (ran.succeeded()) {
      std::string secret = secret_in(ran.out);
      require(secret.size() < 4 || creds.error().message().find(secret) == std::string::npos,
              "a message quotes the secret a helper answered");
    }
    return 0;
  }
  require(creds->username != "<token>", "an identity token is taken for a user name");
  return 0;
}
