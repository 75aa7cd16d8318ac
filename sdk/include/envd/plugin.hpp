// C++ API for writing envd driver modules.
//
// A module derives one class from envd::sdk::BuilderDriver or
// envd::sdk::RunnerDriver, overrides the verbs it supports, and declares itself
// with one macro in one .cpp file:
//
//   class MyBuilder : public envd::sdk::BuilderDriver {
//    public:
//     envd::Result<std::string> normalize_address(const std::string& a) const override;
//     envd::Result<envd::sdk::Transport> dial(const envd::sdk::Request& r) override;
//   };
//   ENVD_DECLARE_BUILDER_PLUGIN(MyBuilder, "my-builder", "0.1.0",
//                               "builds on my daemon", ENVD_MATURITY_EXPERIMENTAL)
//
// The macro generates the exported C entry function of <envd/plugin_abi.h>.
// The glue in libenvd-sdk converts between the C ABI and these classes: it parses
// the request JSON, catches every exception (reported as ENVD_ERR_INTERNAL), and
// copies results into strings the core frees with the descriptor's free_string.
//
// Options whose values are files (TLS material, a daemon config) are declared
// in the driver class, and the core copies those files into the context's
// private directory; every verb but normalize_options then sees the absolute
// path of the stored copy as the option's value:
//
//   static constexpr const char* kFileOptions[] = {"tls-ca", "tls-cert", nullptr};
//
// Long work (pulling an image, waiting for a daemon) is reported with
// envd::sdk::report_progress() of <envd/progress.hpp>.
//
// Lifetime: the driver object is created on the first verb call (never at
// dlopen time) and lives until the process exits. The core does not call the
// same driver concurrently for one request, but may call it from several threads;
// drivers that keep mutable state must guard it.
//
// A verb that is not overridden fails with ENVD_ERR_UNSUPPORTED and the message
// "the '<type>' <kind> cannot <verb> yet: this version does not provide it".
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "envd/plugin_abi.h"
#include "envd/result.hpp"

namespace envd::sdk {

// Driver options as stored with a context: string keys to string values.
using Options = std::map<std::string, std::string>;

// One call's parameters (the request JSON of plugin_abi.h, parsed).
struct Request {
  std::string context;                       // the context's name
  std::string address;                       // normalised address, as stored
  Options options;                           // normalised driver options
  std::string data_dir;                      // the context's private directory (0700)
  std::chrono::milliseconds timeout{10000};  // deadline for the whole call
  std::string args_json = "{}";              // verb-specific arguments, a JSON object
};

// How the core reaches the BuildKit daemon (see envd_transport).
struct Transport {
  enum class Kind { fd = ENVD_TRANSPORT_FD, grpc_target = ENVD_TRANSPORT_GRPC_TARGET };
  Kind kind = Kind::fd;
  int fd = -1;               // Kind::fd: connected socket; ownership passes to the core
  std::string target;        // Kind::grpc_target: gRPC target
  std::string tls_ca_pem;    // empty: plaintext
  std::string tls_cert_pem;  // empty: no client certificate
  std::string tls_key_pem;
  std::string tls_server_name;  // empty: the target's host
  std::string description;      // e.g. "tcp://10.0.0.5:8888"
};

// Base class of builder drivers: transport and lifecycle of a BuildKit daemon.
// A builder never runs the build itself; the core does, over the transport.
class BuilderDriver {
 public:
  virtual ~BuilderDriver() = default;

  // Validates a user-typed address and returns the stored form. An empty input
  // asks for the default address; return an Errc::invalid_argument error naming
  // the expected form if there is none. Must not do I/O.
  virtual Result<std::string> normalize_address(const std::string& address) const = 0;

  // Validates driver options. The default accepts none: any key is rejected.
  virtual Result<Options> normalize_options(const Options& options) const;

  // Connects to (and if needed starts) the daemon.
  virtual Result<Transport> dial(const Request& request);

  // The daemon's lifecycle state as a JSON object with at least "state"
  // ("running", "stopped", "missing" or "unknown") and "detail".
  virtual Result<std::string> status(const Request& request);

  // Creates and starts a managed daemon; returns a JSON object.
  virtual Result<std::string> bootstrap(const Request& request);

  virtual Status stop(const Request& request);
  virtual Status remove(const Request& request);
};

// Base class of runner drivers: development environments.
class RunnerDriver {
 public:
  virtual ~RunnerDriver() = default;

  // As for builders; an empty address may stay empty.
  virtual Result<std::string> normalize_address(const std::string& address) const = 0;
  virtual Result<Options> normalize_options(const Options& options) const;

  // Each returns JSON text: an environment object, or an array of them for list.
  virtual Result<std::string> create(const Request& request);
  virtual Result<std::string> list(const Request& request);
  virtual Result<std::string> inspect(const Request& request);
  virtual Status remove(const Request& request);
};

// Static facts about a module, as given to the declaration macro.
struct PluginInfo {
  const char* type_name;
  const char* version;
  const char* description;
  envd_maturity maturity;
};

namespace detail {

// A driver class declares its file options (plugin_abi.h, ABI 1.1) with
//   static constexpr const char* kFileOptions[] = {"tls-ca", "tls-cert", nullptr};
template <typename Driver>
constexpr const char* const* file_options_of() {
  if constexpr (requires { Driver::kFileOptions; }) {
    return Driver::kFileOptions;
  } else {
    return nullptr;
  }
}

// The glue below is instantiated inside each module (hidden visibility), so
// every module gets its own C thunks; the work is done by the non-template
// functions implemented in libenvd-sdk, which catch every exception.
using BuilderFactory = BuilderDriver& (*)();
using RunnerFactory = RunnerDriver& (*)();

void free_string(char* s);

envd_status builder_normalize_address(BuilderFactory f, const PluginInfo& info, const char* address,
                                      char** out, char** error);
envd_status builder_normalize_options(BuilderFactory f, const PluginInfo& info,
                                      const char* options_json, char** out, char** error);
envd_status builder_dial(BuilderFactory f, const PluginInfo& info, const char* request,
                         envd_transport* transport, char** error);
envd_status builder_status(BuilderFactory f, const PluginInfo& info, const char* request,
                           char** out, char** error);
envd_status builder_bootstrap(BuilderFactory f, const PluginInfo& info, const char* request,
                              char** out, char** error);
envd_status builder_stop(BuilderFactory f, const PluginInfo& info, const char* request,
                         char** error);
envd_status builder_remove(BuilderFactory f, const PluginInfo& info, const char* request,
                           char** error);

envd_status runner_normalize_address(RunnerFactory f, const PluginInfo& info, const char* address,
                                     char** out, char** error);
envd_status runner_normalize_options(RunnerFactory f, const PluginInfo& info,
                                     const char* options_json, char** out, char** error);
envd_status runner_create(RunnerFactory f, const PluginInfo& info, const char* request, char** out,
                          char** error);
envd_status runner_list(RunnerFactory f, const PluginInfo& info, const char* request, char** out,
                        char** error);
envd_status runner_inspect(RunnerFactory f, const PluginInfo& info, const char* request, char** out,
                           char** error);
envd_status runner_remove(RunnerFactory f, const PluginInfo& info, const char* request,
                          char** error);

// Traits: `using Driver = ...;` and `static constexpr PluginInfo info{...};`.
template <typename Traits>
struct BuilderGlue {
  static BuilderDriver& driver() {
    static typename Traits::Driver instance;
    return instance;
  }
  static envd_status normalize_address(const char* a, char** out, char** err) {
    return builder_normalize_address(&driver, Traits::info, a, out, err);
  }
  static envd_status normalize_options(const char* o, char** out, char** err) {
    return builder_normalize_options(&driver, Traits::info, o, out, err);
  }
  static envd_status dial(const char* r, envd_transport* t, char** err) {
    return builder_dial(&driver, Traits::info, r, t, err);
  }
  static envd_status status(const char* r, char** out, char** err) {
    return builder_status(&driver, Traits::info, r, out, err);
  }
  static envd_status bootstrap(const char* r, char** out, char** err) {
    return builder_bootstrap(&driver, Traits::info, r, out, err);
  }
  static envd_status stop(const char* r, char** err) {
    return builder_stop(&driver, Traits::info, r, err);
  }
  static envd_status remove(const char* r, char** err) {
    return builder_remove(&driver, Traits::info, r, err);
  }
  static const envd_plugin_descriptor* descriptor() {
    static const envd_builder_vtable vtable{sizeof(envd_builder_vtable),
                                            &normalize_address,
                                            &normalize_options,
                                            &dial,
                                            &status,
                                            &bootstrap,
                                            &stop,
                                            &remove};
    static const envd_plugin_descriptor desc{ENVD_ABI_MAJOR,
                                             ENVD_ABI_MINOR,
                                             sizeof(envd_plugin_descriptor),
                                             ENVD_KIND_BUILDER,
                                             Traits::info.type_name,
                                             Traits::info.version,
                                             Traits::info.description,
                                             Traits::info.maturity,
                                             &free_string,
                                             &vtable,
                                             nullptr,
                                             file_options_of<typename Traits::Driver>()};
    return &desc;
  }
};

template <typename Traits>
struct RunnerGlue {
  static RunnerDriver& driver() {
    static typename Traits::Driver instance;
    return instance;
  }
  static envd_status normalize_address(const char* a, char** out, char** err) {
    return runner_normalize_address(&driver, Traits::info, a, out, err);
  }
  static envd_status normalize_options(const char* o, char** out, char** err) {
    return runner_normalize_options(&driver, Traits::info, o, out, err);
  }
  static envd_status create(const char* r, char** out, char** err) {
    return runner_create(&driver, Traits::info, r, out, err);
  }
  static envd_status list(const char* r, char** out, char** err) {
    return runner_list(&driver, Traits::info, r, out, err);
  }
  static envd_status inspect(const char* r, char** out, char** err) {
    return runner_inspect(&driver, Traits::info, r, out, err);
  }
  static envd_status remove(const char* r, char** err) {
    return runner_remove(&driver, Traits::info, r, err);
  }
  static const envd_plugin_descriptor* descriptor() {
    static const envd_runner_vtable vtable{sizeof(envd_runner_vtable),
                                           &normalize_address,
                                           &normalize_options,
                                           &create,
                                           &list,
                                           &inspect,
                                           &remove};
    static const envd_plugin_descriptor desc{ENVD_ABI_MAJOR,
                                             ENVD_ABI_MINOR,
                                             sizeof(envd_plugin_descriptor),
                                             ENVD_KIND_RUNNER,
                                             Traits::info.type_name,
                                             Traits::info.version,
                                             Traits::info.description,
                                             Traits::info.maturity,
                                             &free_string,
                                             nullptr,
                                             &vtable,
                                             file_options_of<typename Traits::Driver>()};
    return &desc;
  }
};

}  // namespace detail
}  // namespace envd::sdk

// Declares the module's entry function for a builder driver class. Use once per
// module, at namespace scope, in a .cpp file.
#define ENVD_DECLARE_BUILDER_PLUGIN(DriverClass, TypeName, Version, Description, Maturity)   \
  namespace {                                                                                \
  struct EnvdPluginTraits {                                                                  \
    using Driver = DriverClass;                                                              \
    static constexpr ::envd::sdk::PluginInfo info{TypeName, Version, Description, Maturity}; \
  };                                                                                         \
  }                                                                                          \
  extern "C" ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {      \
    return ::envd::sdk::detail::BuilderGlue<EnvdPluginTraits>::descriptor();                 \
  }

// Declares the module's entry function for a runner driver class.
#define ENVD_DECLARE_RUNNER_PLUGIN(DriverClass, TypeName, Version, Description, Maturity)    \
  namespace {                                                                                \
  struct EnvdPluginTraits {                                                                  \
    using Driver = DriverClass;                                                              \
    static constexpr ::envd::sdk::PluginInfo info{TypeName, Version, Description, Maturity}; \
  };                                                                                         \
  }                                                                                          \
  extern "C" ENVD_PLUGIN_EXPORT const envd_plugin_descriptor* envd_plugin_entry(void) {      \
    return ::envd::sdk::detail::RunnerGlue<EnvdPluginTraits>::descriptor();                  \
  }
