// Core-side handles for a loaded driver: C++ calls with Result errors on one
// side, the module's C function table on the other. Every string the module
// returns is copied and released with the module's free_string before the call
// returns; no module memory outlives a call.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "envd/plugin_abi.h"
#include "envd/result.hpp"

namespace envd::plugin {

using Options = std::map<std::string, std::string>;

// The arguments of one driver verb (serialised as the request JSON of plugin_abi.h).
struct DriverRequest {
  std::string context;
  std::string address;
  Options options;
  std::string data_dir;
  std::chrono::milliseconds timeout{10000};
  std::string args_json = "{}";
};

// A transport returned by dial(); owns its fd.
struct Transport {
  int kind = ENVD_TRANSPORT_FD;
  int fd = -1;
  std::string target;
  std::string tls_ca_pem;
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_server_name;
  std::string description;

  Transport() = default;
  Transport(Transport&& other) noexcept;
  Transport& operator=(Transport&& other) noexcept;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  ~Transport();
};

class BuilderDriver {
 public:
  explicit BuilderDriver(const envd_plugin_descriptor* descriptor) : desc_(descriptor) {}

  std::string_view type() const { return desc_->type_name; }

  // Errors are prefixed "builder '<type>': ".
  Result<std::string> normalize_address(std::string_view address) const;
  Result<Options> normalize_options(const Options& options) const;
  Result<Transport> dial(const DriverRequest& request) const;
  Result<std::string> status(const DriverRequest& request) const;
  Result<std::string> bootstrap(const DriverRequest& request) const;
  Status stop(const DriverRequest& request) const;
  Status remove(const DriverRequest& request) const;

 private:
  const envd_plugin_descriptor* desc_;
};

class RunnerDriver {
 public:
  explicit RunnerDriver(const envd_plugin_descriptor* descriptor) : desc_(descriptor) {}

  std::string_view type() const { return desc_->type_name; }

  // Errors are prefixed "runner '<type>': ".
  Result<std::string> normalize_address(std::string_view address) const;
  Result<Options> normalize_options(const Options& options) const;
  Result<std::string> create(const DriverRequest& request) const;
  Result<std::string> list(const DriverRequest& request) const;
  Result<std::string> inspect(const DriverRequest& request) const;
  Status remove(const DriverRequest& request) const;

 private:
  const envd_plugin_descriptor* desc_;
};

}  // namespace envd::plugin
