// The SDK's address grammar every module's normalize_address is built on:
// URLs, host:port, query strings, name?query, DOCKER_HOST.
#include "envd/address.hpp"
#include "envd/docker_engine.hpp"
#include "fuzz_input.hpp"

namespace sdk = envd::sdk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envd::fuzz::as_text(data, size);
  if (auto url = sdk::parse_url(text); url) {
    // What is stored parses back to itself.
    auto again = sdk::parse_url(url->to_string());
    envd::fuzz::require(again.ok() && again->to_string() == url->to_string(),
                        "a URL's stored form does not parse back to itself");
  } else {
    envd::fuzz::require_clean_message(url.error().message());
  }
  if (auto hp = sdk::parse_host_port(text); !hp) {
    envd::fuzz::require_clean_message(hp.error().message());
  }
  if (auto query = sdk::parse_query(text); query) {
    auto again = sdk::parse_query(sdk::format_query(*query));
    envd::fuzz::require(again.ok() && *again == *query, "a query does not round-trip");
  } else {
    envd::fuzz::require_clean_message(query.error().message());
  }
  if (auto named = sdk::parse_name_with_query(text); !named) {
    envd::fuzz::require_clean_message(named.error().message());
  }
  if (auto host = sdk::parse_docker_host(text); !host) {
    envd::fuzz::require_clean_message(host.error().message());
  }
  return 0;
}
