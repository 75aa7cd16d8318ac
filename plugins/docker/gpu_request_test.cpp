#include "gpu_request.hpp"

#include <gtest/gtest.h>

namespace envd::plugins::docker_runner {
namespace {

namespace json = boost::json;

json::object request_of(const std::string& gpus) {
  auto r = gpu_device_requests(gpus);
  EXPECT_TRUE(r) << gpus << ": " << r.error().message();
  if (!r || r->size() != 1) return {};
  return r->at(0).as_object();
}

std::string refusal(const std::string& gpus) {
  auto r = gpu_device_requests(gpus);
  if (r) return "accepted";
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
  return r.error().message();
}

// One capability set: [[...]]. Not json::array{json::array{...}}, which is a
// copy of the inner array (list-initialisation from one array).
json::array one_set(json::array capabilities) {
  json::array sets;
  sets.emplace_back(std::move(capabilities));
  return sets;
}

const json::array kGpuOnly = one_set({"gpu"});

TEST(DockerRunnerGpus, CountsAndAllAsDockerReadsThem) {
  EXPECT_EQ(request_of("all"),
            (json::object{{"Driver", ""}, {"Count", -1}, {"Capabilities", kGpuOnly}}));
  EXPECT_EQ(request_of("2"),
            (json::object{{"Driver", ""}, {"Count", 2}, {"Capabilities", kGpuOnly}}));
  EXPECT_EQ(request_of("count=3").at("Count"), 3);
  EXPECT_EQ(request_of("count=all").at("Count"), -1);
  // A record without a count or devices asks for one GPU, as docker's does.
  EXPECT_EQ(request_of("driver=nvidia"),
            (json::object{{"Driver", "nvidia"}, {"Count", 1}, {"Capabilities", kGpuOnly}}));
}

TEST(DockerRunnerGpus, DevicesQuotedOrNot) {
  json::object quoted = request_of(R"("device=0,GPU-3a")");
  EXPECT_EQ(quoted.at("DeviceIDs"), (json::array{"0", "GPU-3a"}));
  EXPECT_FALSE(quoted.contains("Count"));
  // docker would read the unquoted list as device 0 plus a count of 1, which
  // the Engine refuses; the list is what was meant.
  EXPECT_EQ(request_of("device=0,1,2").at("DeviceIDs"), (json::array{"0", "1", "2"}));
  EXPECT_EQ(request_of("device=1,capabilities=compute").at("DeviceIDs"), (json::array{"1"}));
}

TEST(DockerRunnerGpus, CapabilitiesDriverAndOptions) {
  json::object r = request_of(R"(2,"capabilities=compute,utility",driver=nvidia,)"
                              R"("options=mode=fast,flag")");
  EXPECT_EQ(r, (json::object{{"Driver", "nvidia"},
                             {"Count", 2},
                             {"Capabilities", one_set({"compute", "utility", "gpu"})},
                             {"Options", json::object{{"mode", "fast"}, {"flag", ""}}}}));
  // Unquoted, a capability list takes the bare names after it; a count
  // after it is still docker's count.
  json::object unquoted = request_of("capabilities=compute,video,4");
  EXPECT_EQ(unquoted.at("Capabilities"), one_set({"compute", "video", "gpu"}));
  EXPECT_EQ(unquoted.at("Count"), 4);
  // `gpu` is asked once, and so is every capability named twice.
  EXPECT_EQ(request_of("all,capabilities=gpu").at("Capabilities"), kGpuOnly);
  EXPECT_EQ(request_of("all,capabilities=video,gpu,video,gpu").at("Capabilities"),
            one_set({"video", "gpu"}));
}

TEST(DockerRunnerGpus, RefusalsSayWhatIsWrong) {
  EXPECT_EQ(refusal("many"), "gpus 'many' has the count 'many', not all or a number of GPUs");
  EXPECT_EQ(refusal("0"),
            "gpus '0' asks for no GPU (for GPU 0 give device=0; without --gpus there are none)");
  EXPECT_EQ(refusal("2,count=3"), "gpus '2,count=3' gives count twice");
  EXPECT_EQ(refusal("2,3"), "gpus '2,3' gives a count twice");
  EXPECT_EQ(refusal("2,device=1"), "gpus '2,device=1' gives both a count and devices; give one");
  EXPECT_EQ(refusal("device="), "gpus 'device=' has an empty device ID");
  EXPECT_EQ(refusal("device=0,"), "gpus 'device=0,' has an empty device ID");
  EXPECT_EQ(refusal("capabilities=,x"), "gpus 'capabilities=,x' has an empty capability");
  EXPECT_EQ(refusal("gpu=1"),
            "gpus 'gpu=1' has the key 'gpu', not one of count, device, capabilities, driver or "
            "options");
  EXPECT_EQ(refusal("driver="), "gpus 'driver=' names no driver");
  EXPECT_EQ(refusal("options=,=x"), "gpus 'options=,=x' has an option without a name");
  EXPECT_EQ(refusal(R"("device=0)"), "gpus '\"device=0' has an unterminated quote");
  EXPECT_EQ(refusal("all\n2"), "gpus 'all\\x0a2' has a line break");
  EXPECT_EQ(refusal("12345"), "gpus '12345' has the count '12345', not all or a number of GPUs");
}

TEST(DockerRunnerGpus, DescribedAsGpusWouldSayIt) {
  auto described = [](const std::string& gpus) {
    return gpus_of(json::object{{"DeviceRequests", *gpu_device_requests(gpus)}});
  };
  EXPECT_EQ(described("all"), "all");
  EXPECT_EQ(described("2"), "2");
  EXPECT_EQ(described("device=0,1"), "device=0,1");
  EXPECT_EQ(described(R"(count=1,"capabilities=compute,utility",driver=nvidia,options=a=b)"),
            "1 capabilities=compute,utility driver=nvidia options=a=b");
  EXPECT_EQ(gpus_of(json::object{}), "");
  EXPECT_EQ(gpus_of(json::object{{"DeviceRequests", json::array{}}}), "");
  // What another client asked for, as the Engine keeps it.
  EXPECT_EQ(gpus_of(json::object{{"DeviceRequests", json::array{json::object{{"Count", 2}}}}}),
            "2");
}

}  // namespace
}  // namespace envd::plugins::docker_runner
