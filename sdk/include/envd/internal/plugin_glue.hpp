// Internal to the SDK: the glue <envd/plugin.hpp>'s declaration macros
// instantiate inside each module, between the C ABI of <envd/plugin_abi.h>
// and the C++ driver classes. Not an API; it may change in any release.
#pragma once

#include "envd/internal/host_binding.hpp"
#include "envd/plugin.hpp"
#include "envd/plugin_abi.h"

namespace envd::sdk {

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
// functions of the SDK (compiled into the module too), which catch every
// exception.
using BuilderFactory = BuilderDriver& (*)();
using RunnerFactory = RunnerDriver& (*)();

void free_string(char* s);

// The descriptor's set_host (ABI 1.2): binds this module's copy of the SDK.
inline void set_host(const envd_host_api* host) { internal::bind_host(host); }

envd_status builder_normalize_address(BuilderFactory f, const char* address, char** out,
                                      char** error);
envd_status builder_normalize_options(BuilderFactory f, const char* options_json, char** out,
                                      char** error);
envd_status builder_dial(BuilderFactory f, const char* request, envd_transport* transport,
                         char** error);
envd_status builder_status(BuilderFactory f, const char* request, char** out, char** error);
envd_status builder_bootstrap(BuilderFactory f, const char* request, char** out, char** error);
envd_status builder_stop(BuilderFactory f, const char* request, char** error);
envd_status builder_remove(BuilderFactory f, const char* request, char** error);
envd_status builder_dial_session(BuilderFactory f, const char* request, int32_t* fd, char** error);

envd_status runner_normalize_address(RunnerFactory f, const char* address, char** out,
                                     char** error);
envd_status runner_normalize_options(RunnerFactory f, const char* options_json, char** out,
                                     char** error);
envd_status runner_create(RunnerFactory f, const char* request, char** out, char** error);
envd_status runner_list(RunnerFactory f, const char* request, char** out, char** error);
envd_status runner_inspect(RunnerFactory f, const char* request, char** out, char** error);
envd_status runner_remove(RunnerFactory f, const char* request, char** error);
envd_status runner_logs(RunnerFactory f, const char* request, const envd_stdio* stdio,
                        char** error);
envd_status runner_attach(RunnerFactory f, const char* request, const envd_stdio* stdio,
                          int32_t* exit_code, char** error);
envd_status runner_check_create(RunnerFactory f, const char* request, char** error);

// Traits: `using Driver = ...;` and `static constexpr PluginInfo info{...};`.
template <typename Traits>
struct BuilderGlue {
  static BuilderDriver& driver() {
    static typename Traits::Driver instance;
    return instance;
  }
  static envd_status normalize_address(const char* a, char** out, char** err) {
    return builder_normalize_address(&driver, a, out, err);
  }
  static envd_status normalize_options(const char* o, char** out, char** err) {
    return builder_normalize_options(&driver, o, out, err);
  }
  static envd_status dial(const char* r, envd_transport* t, char** err) {
    return builder_dial(&driver, r, t, err);
  }
  static envd_status status(const char* r, char** out, char** err) {
    return builder_status(&driver, r, out, err);
  }
  static envd_status bootstrap(const char* r, char** out, char** err) {
    return builder_bootstrap(&driver, r, out, err);
  }
  static envd_status stop(const char* r, char** err) { return builder_stop(&driver, r, err); }
  static envd_status remove(const char* r, char** err) { return builder_remove(&driver, r, err); }
  static envd_status dial_session(const char* r, int32_t* fd, char** err) {
    return builder_dial_session(&driver, r, fd, err);
  }
  static const envd_plugin_descriptor* descriptor() {
    static const envd_builder_vtable vtable{sizeof(envd_builder_vtable),
                                            &normalize_address,
                                            &normalize_options,
                                            &dial,
                                            &status,
                                            &bootstrap,
                                            &stop,
                                            &remove,
                                            &dial_session};
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
                                             file_options_of<typename Traits::Driver>(),
                                             &set_host};
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
    return runner_normalize_address(&driver, a, out, err);
  }
  static envd_status normalize_options(const char* o, char** out, char** err) {
    return runner_normalize_options(&driver, o, out, err);
  }
  static envd_status create(const char* r, char** out, char** err) {
    return runner_create(&driver, r, out, err);
  }
  static envd_status list(const char* r, char** out, char** err) {
    return runner_list(&driver, r, out, err);
  }
  static envd_status inspect(const char* r, char** out, char** err) {
    return runner_inspect(&driver, r, out, err);
  }
  static envd_status remove(const char* r, char** err) { return runner_remove(&driver, r, err); }
  static envd_status logs(const char* r, const envd_stdio* io, char** err) {
    return runner_logs(&driver, r, io, err);
  }
  static envd_status attach(const char* r, const envd_stdio* io, int32_t* code, char** err) {
    return runner_attach(&driver, r, io, code, err);
  }
  static envd_status check_create(const char* r, char** err) {
    return runner_check_create(&driver, r, err);
  }
  static const envd_plugin_descriptor* descriptor() {
    static const envd_runner_vtable vtable{sizeof(envd_runner_vtable),
                                           &normalize_address,
                                           &normalize_options,
                                           &create,
                                           &list,
                                           &inspect,
                                           &remove,
                                           &logs,
                                           &attach,
                                           &check_create};
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
                                             file_options_of<typename Traits::Driver>(),
                                             &set_host};
    return &desc;
  }
};

}  // namespace detail

}  // namespace envd::sdk
