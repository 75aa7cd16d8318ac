// Each driver module's address grammar, through the module's own
// normalize_address: the first byte of the input picks the module, the rest
// is the address. What a module accepts is what the store keeps, so it must be
// its own normal form and hold no control character; what it rejects is one
// clean line.
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "docker-container/docker_container_builder.hpp"
#include "docker/docker_runner.hpp"
#include "envd-server/envd_server_runner.hpp"
#include "fuzz_input.hpp"
#include "kube-pod/kube_address.hpp"
#include "kube-pod/kube_pod_builder.hpp"
#include "moby-worker/moby_worker_builder.hpp"
#include "tcp/tcp_builder.hpp"
#include "unix/unix_builder.hpp"

namespace {

using envd::Result;
namespace plugins = envd::plugins;

// One module's normalize_address, whether it is a builder or a runner.
struct Module {
  const char* name;
  std::function<Result<std::string>(const std::string&)> normalize;
};

template <typename Driver>
Module module_of(const char* name) {
  auto driver = std::make_shared<Driver>();
  return Module{
      name, [driver](const std::string& address) { return driver->normalize_address(address); }};
}

// The modules, made once: none of them does any I/O before it dials.
const std::array<Module, 7>& modules() {
  static const std::array<Module, 7> all{
      module_of<plugins::TcpBuilder>("tcp"),
      module_of<plugins::UnixBuilder>("unix"),
      module_of<plugins::DockerContainerBuilder>("docker-container"),
      module_of<plugins::KubePodBuilder>("kube-pod"),
      module_of<plugins::MobyWorkerBuilder>("moby-worker"),
      module_of<plugins::DockerRunner>("docker"),
      module_of<plugins::EnvdServerRunner>("envd-server"),
  };
  return all;
}

bool has_control_character(const std::string& text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// kube-pod's values go to kubectl: none of them may read as a flag.
void check_kube_target(const std::string& stored) {
  auto target = plugins::kube::parse_address(stored);
  envd::fuzz::require(target.ok(), "kube-pod: a stored address does not parse");
  for (const std::string* value : {&target->name, &target->context, &target->namespace_,
                                   &target->container, &target->selector}) {
    envd::fuzz::require(value->empty() || value->front() != '-',
                        "kube-pod: a stored value starts with '-' (a kubectl flag)");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& all = modules();
  const Module& module = all[data[0] % all.size()];
  std::string address(envd::fuzz::as_text(data + 1, size - 1));
  Result<std::string> stored = module.normalize(address);
  if (!stored) {
    envd::fuzz::require_clean_message(stored.error().message());
    return 0;
  }
  envd::fuzz::require(!has_control_character(*stored),
                      "a stored address holds a control character");
  Result<std::string> again = module.normalize(*stored);
  envd::fuzz::require(again.ok() && *again == *stored,
                      "a stored address is not its own normal form");
  if (std::string_view(module.name) == "kube-pod") check_kube_target(*stored);
  return 0;
}
