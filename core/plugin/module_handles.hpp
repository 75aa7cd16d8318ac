// Core-side handles for a loaded module: BuilderModule and RunnerModule call
// the driver a module provides through its C function table (plugin_abi.h), with
// C++ types and Result errors on the core's side. They are the host's view of a
// module, not the SDK's envd::sdk::BuilderDriver / RunnerDriver that module
// authors derive from. Every string the module returns is copied and released
// with the module's free_string before the call returns; no module memory
// outlives a call.
//
// Errors: a non-zero envd_status becomes the Errc of the same value, with the
// module's message prefixed "builder '<type>': " or "runner '<type>': ". A
// function that throws anyway (a module built without the SDK's glue), returns
// an unknown status, or returns malformed output (missing result, JSON of the
// wrong shape) yields Errc::internal with a message saying which verb did it.
//
// Thread-safety: the handles are cheap, copyable views of a descriptor that
// lives for the whole process (modules are never unloaded). Calls may come from
// any thread, as plugin_abi.h allows.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "envd/plugin_abi.h"
#include "envd/result.hpp"
#include "util/unique_fd.hpp"

namespace envd::plugin {

using Options = std::map<std::string, std::string>;

// The arguments of one driver verb (serialised as the request JSON of plugin_abi.h).
struct DriverRequest {
  std::string context;
  std::string address;
  Options options;
  std::string data_dir;
  std::chrono::milliseconds timeout{10000};
  std::string args_json = "{}";  // must be a JSON object, else invalid_argument
};

// Serialises `request` to the request JSON of plugin_abi.h. Fails with
// Errc::invalid_argument if args_json is not a JSON object.
Result<std::string> to_request_json(const DriverRequest& request);

// A transport returned by dial(). Owns its fd (closed on destruction) when kind
// is ENVD_TRANSPORT_FD; fd is -1 for ENVD_TRANSPORT_GRPC_TARGET. Move-only.
struct Transport {
  int kind = ENVD_TRANSPORT_FD;
  int fd = -1;
  std::string target;
  std::string tls_ca_pem;
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_server_name;
  std::string description;
  // ENVD_TRANSPORT_SELF_CONTAINED: the process may end without tearing the
  // module or this connection down (ABI 1.5; false for older modules).
  bool self_contained = false;

  Transport() = default;
  Transport(Transport&& other) noexcept;
  Transport& operator=(Transport&& other) noexcept;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  ~Transport();

  // Gives up ownership of the fd (returns it, leaves -1).
  int release_fd();
};

// One build's session, as BuilderModule::dial_session announces it to the
// daemon (the x-docker-expose-session-* values).
struct SessionSpec {
  std::string id;
  std::string name;
  std::string shared_key;
  std::vector<std::string> methods;
};

// Precondition for both classes: `descriptor` passed validation (the registry
// guarantees it) and stays valid for the life of the process.
class BuilderModule {
 public:
  explicit BuilderModule(const envd_plugin_descriptor* descriptor);

  std::string_view type() const { return desc_->type_name; }
  const envd_plugin_descriptor* descriptor() const { return desc_; }
  // The option keys whose values are files (plugin_abi.h, ABI 1.1).
  std::vector<std::string> file_options() const;

  // Errors are prefixed "builder '<type>': ".
  Result<std::string> normalize_address(std::string_view address) const;
  Result<Options> normalize_options(const Options& options) const;
  // The core sets struct_size (and fd = -1) before the call and takes ownership
  // of the fd and strings on success; on failure it releases nothing, as the
  // ABI says. A transport of unknown kind, an FD transport without a socket or
  // a target transport without a target is Errc::internal.
  Result<Transport> dial(const DriverRequest& request) const;
  Result<std::string> status(const DriverRequest& request) const;     // a JSON object
  Result<std::string> bootstrap(const DriverRequest& request) const;  // a JSON object
  Status stop(const DriverRequest& request) const;
  Status remove(const DriverRequest& request) const;

  // ABI 1.4, optional: a connection of its own for one build's session, on
  // which the daemon is the HTTP/2 client (plugin_abi.h). `session` becomes
  // args "session" (request.args_json is replaced). Errc::unsupported when the
  // module lacks the verb or its daemon the route: the caller then tunnels
  // the session through the dial() connection.
  Result<util::UniqueFd> dial_session(DriverRequest request, const SessionSpec& session) const;
  // Whether the module has the verb at all (it may still answer unsupported).
  bool has_dial_session() const;

 private:
  const envd_plugin_descriptor* desc_;
};

// The user's input and output lent to a runner's logs or attach (envd_stdio):
// the descriptors stay the caller's.
struct RunnerStdio {
  int in_fd = -1;
  int out_fd = 1;
  int err_fd = 2;
  bool is_terminal = false;
  std::function<void()> make_raw = [] {};
  std::function<std::uint32_t(std::uint16_t& rows, std::uint16_t& columns)> window_size;
};

class RunnerModule {
 public:
  explicit RunnerModule(const envd_plugin_descriptor* descriptor);

  std::string_view type() const { return desc_->type_name; }
  const envd_plugin_descriptor* descriptor() const { return desc_; }
  std::vector<std::string> file_options() const;

  // Errors are prefixed "runner '<type>': ".
  Result<std::string> normalize_address(std::string_view address) const;
  Result<Options> normalize_options(const Options& options) const;
  // create and check_create refuse a spec key the module's ABI predates
  // (Errc::unsupported): "volumes", "shm_size", "cpuset" and "cap_add" need 1.7.
  Result<std::string> create(const DriverRequest& request) const;   // a JSON object
  Result<std::string> list(const DriverRequest& request) const;     // a JSON array
  Result<std::string> inspect(const DriverRequest& request) const;  // a JSON object
  Status remove(const DriverRequest& request) const;
  // ABI 1.3 verbs: Errc::unsupported, saying why, for a module without them.
  Status logs(const DriverRequest& request, const RunnerStdio& stdio) const;
  Result<int> attach(const DriverRequest& request, const RunnerStdio& stdio) const;
  // ABI 1.6: create's checks, contacting nothing. Succeeds for a module
  // without the verb (an older one, or NULL): create still checks.
  Status check_create(const DriverRequest& request) const;

 private:
  // Errc::unsupported unless the module's runner table reaches `end` bytes
  // (an ABI 1.3 field) and `present` finds the function set.
  Status check_verb(const char* verb, std::size_t end,
                    bool (*present)(const envd_runner_vtable&)) const;
  // Errc::unsupported for a create spec carrying what the module's ABI has
  // no word for: the module would drop it unread.
  Status check_spec_keys(const DriverRequest& request) const;

  const envd_plugin_descriptor* desc_;
};

}  // namespace envd::plugin
