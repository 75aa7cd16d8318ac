// `--gpus` as `docker run --gpus` reads it, into the Engine's DeviceRequests,
// and back into text for describe. Pure: tested without an Engine.
//
// The grammar is one CSV record (quotes as docker's): `all`, a count, and the
// keys count=, device=, capabilities=, driver= and options= (a quoted
// KEY=VALUE list), each at most once. A device or capability list is quoted
// in docker (`"device=0,1"`); here the unquoted form is taken too, since
// docker's reading of it (device 0 and a count of 1) is one the Engine
// refuses anyway. `0` is refused: docker reads it as no GPU at all, which is
// seldom what was meant (GPU 0 is `device=0`).
#pragma once

#include <boost/json.hpp>
#include <string>

#include "envd/result.hpp"

namespace envd::plugins::docker_runner {

// The DeviceRequests array for `gpus`, or an error that quotes it and says
// what is wrong (without the "invalid environment spec" prefix).
Result<boost::json::array> gpu_device_requests(const std::string& gpus);

// What a container's DeviceRequests ask for, as `--gpus` would say it ("all",
// "2", "device=0,1 capabilities=compute,utility"); "" for none.
std::string gpus_of(const boost::json::object& host_config);

}  // namespace envd::plugins::docker_runner
