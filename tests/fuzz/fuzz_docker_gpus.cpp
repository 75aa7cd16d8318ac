// The docker runner's --gpus grammar (plugins/docker/gpu_request.hpp): what it
// refuses is one clean line; what it accepts is one request the Engine can
// take (a positive count or all, or devices, never both; the gpu capability
// and every other once), and describe shows it back on one clean line.
#include <algorithm>
#include <string>

#include "docker/gpu_request.hpp"
#include "fuzz_input.hpp"

namespace json = boost::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string gpus(envd::fuzz::as_text(data, size));
  auto requests = envd::plugins::docker_runner::gpu_device_requests(gpus);
  if (!requests) {
    envd::fuzz::require_clean_message(requests.error().message());
    return 0;
  }
  envd::fuzz::require(requests->size() == 1, "one request");
  const json::object& request = requests->at(0).as_object();
  const bool has_count = request.contains("Count");
  const bool has_devices = request.contains("DeviceIDs");
  envd::fuzz::require(has_count != has_devices, "a count or devices, never both");
  if (has_count) {
    std::int64_t count = request.at("Count").as_int64();
    envd::fuzz::require(count == -1 || count > 0, "a count is all or positive");
  } else {
    for (const auto& id : request.at("DeviceIDs").as_array()) {
      envd::fuzz::require(!id.as_string().empty(), "no empty device ID");
    }
  }
  const json::array& sets = request.at("Capabilities").as_array();
  envd::fuzz::require(sets.size() == 1, "one capability set");
  const json::array& caps = sets.at(0).as_array();
  envd::fuzz::require(std::count(caps.begin(), caps.end(), json::value("gpu")) == 1,
                      "gpu asked exactly once");
  for (const auto& cap : caps) {
    envd::fuzz::require(std::count(caps.begin(), caps.end(), cap) == 1,
                        "no capability asked twice");
  }
  const std::string described =
      envd::plugins::docker_runner::gpus_of(json::object{{"DeviceRequests", *requests}});
  envd::fuzz::require(!described.empty(), "an accepted request is described");
  envd::fuzz::require_clean_message(described);
  return 0;
}
