// The Docker Engine's answers, as the SDK and the modules read them: a
// loopback Engine (sdk/testing/fake_engine.hpp) answers each call with the
// fuzz input, and the real calls read it. The first byte picks the call, the
// second the HTTP status of the first answer; the rest is the first answer's
// body, then "\n--\n" and the body of every later answer (status 200): the
// inspect of each listed container, the pull stream after a missing image.
// Whatever the daemon says, a failure is one clean line and what a module
// hands back to the core is JSON.
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <string>

#include "docker-container/engine_ops.hpp"
#include "docker/docker_runner.hpp"
#include "envd/docker_engine.hpp"
#include "fuzz_input.hpp"
#include "testing/fake_engine.hpp"

namespace sdk = envd::sdk;
using envd::fuzz::require;
using envd::fuzz::require_clean_message;

namespace {

constexpr std::array kStatuses{200, 201, 204, 304, 400, 401, 404, 409, 500, 503};

// The answers of the input being run, read by the engine's thread.
struct Script {
  int first_status = 200;
  std::string first_body;
  std::string later_body;
  std::atomic<int> answered{0};
};
Script script;

sdk::testing::FakeEngine& engine() {
  static sdk::testing::FakeEngine fake([](int fd, const sdk::testing::Received&) {
    bool first = script.answered++ == 0;
    sdk::testing::send_all(fd,
                           sdk::testing::response(first ? script.first_status : 200, "X",
                                                  first ? script.first_body : script.later_body));
  });
  return fake;
}

template <typename T>
void check_error(const envd::Result<T>& result) {
  if (!result) require_clean_message(result.error().message());
}

void check_json(const envd::Result<std::string>& result, bool array) {
  check_error(result);
  if (!result) return;
  boost::system::error_code ec;
  auto value = boost::json::parse(*result, ec);
  require(!ec && (array ? value.is_array() : value.is_object()),
          "a module hands the core something other than the JSON it promised");
}

sdk::Request runner_request(const std::string& args_json) {
  sdk::Request request;
  request.address = engine().url();
  request.timeout = std::chrono::milliseconds(2000);
  request.args_json = args_json;
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // No registry credentials are read from the machine's Docker config: an
  // empty one of this run's, removed when libFuzzer exits.
  static const struct EmptyDockerConfig {
    std::string dir;
    EmptyDockerConfig() {
      char tmpl[] = "/tmp/envd-fuzz-engine-XXXXXX";
      envd::fuzz::require(::mkdtemp(tmpl) != nullptr, "cannot make an empty DOCKER_CONFIG");
      dir = tmpl;
      ::setenv("DOCKER_CONFIG", dir.c_str(), 1);
    }
    ~EmptyDockerConfig() { ::rmdir(dir.c_str()); }
  } docker_config;
  (void)docker_config;
  if (size < 2) return 0;
  auto [first, later] = envd::fuzz::split_once(envd::fuzz::as_text(data + 2, size - 2));
  script.first_status = kStatuses[data[1] % kStatuses.size()];
  script.first_body = std::string(first);
  script.later_body = std::string(later);
  script.answered = 0;
  auto deadline = sdk::deadline_after(std::chrono::milliseconds(2000));
  sdk::DockerEngine client = engine().engine();
  switch (data[0] % 6) {
    case 0:
      check_error(client.version(deadline));
      break;
    case 1:
      check_error(client.call("GET", "/info", "", deadline));
      break;
    case 2:
      check_error(
          envd::plugins::docker_container::inspect_container(client, "buildkitd", deadline));
      break;
    case 3: {
      auto pulled = envd::plugins::docker_container::ensure_image(
          client, "registry.example.com/buildkit:v1", deadline);
      if (!pulled) require_clean_message(pulled.error().message());
      break;
    }
    case 4:
      check_json(envd::plugins::DockerRunner().list(runner_request("{}")), true);
      break;
    default:
      check_json(envd::plugins::DockerRunner().inspect(runner_request(R"({"name":"dev"})")), false);
      break;
  }
  return 0;
}
