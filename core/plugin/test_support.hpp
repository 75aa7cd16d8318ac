// Test-only helpers of the plugin unit tests and the dlopen suite
// (tests/plugins): in-memory descriptors and module facts. Generic helpers (TempDir, ScopedEnv,
// file helpers) come from util/test_support.hpp and are re-exported here.
// Not part of the envd_plugin library.
#pragma once

#include <cstdlib>
#include <string>

#include "envd/plugin_abi.h"
#include "plugin/registry.hpp"
#include "util/test_support.hpp"

namespace envd::plugin::testing {

using util::testing::ScopedEnv;
using util::testing::set_mtime;
using util::testing::TempDir;
using util::testing::write_text;

// Function tables whose every verb fails with ENVD_ERR_UNSUPPORTED: enough for
// descriptor validation and lookup tests.
inline envd_status stub_in_out(const char*, char**, char**) { return ENVD_ERR_UNSUPPORTED; }
inline envd_status stub_dial(const char*, envd_transport*, char**) { return ENVD_ERR_UNSUPPORTED; }
inline envd_status stub_in(const char*, char**) { return ENVD_ERR_UNSUPPORTED; }
inline void stub_free(char* s) { std::free(s); }

inline const envd_builder_vtable kStubBuilderTable = {sizeof(envd_builder_vtable),
                                                      stub_in_out,
                                                      stub_in_out,
                                                      stub_dial,
                                                      stub_in_out,
                                                      stub_in_out,
                                                      stub_in,
                                                      stub_in,
                                                      nullptr};
inline const envd_runner_vtable kStubRunnerTable = {sizeof(envd_runner_vtable),
                                                    stub_in_out,
                                                    stub_in_out,
                                                    stub_in_out,
                                                    stub_in_out,
                                                    stub_in_out,
                                                    stub_in,
                                                    nullptr,
                                                    nullptr,
                                                    nullptr};

// A valid descriptor of `kind` named `type`; `type` must outlive it.
inline envd_plugin_descriptor stub_descriptor(envd_plugin_kind kind, const char* type) {
  envd_plugin_descriptor d{};
  d.abi_major = ENVD_ABI_MAJOR;
  d.abi_minor = ENVD_ABI_MINOR;
  d.struct_size = sizeof(envd_plugin_descriptor);
  d.kind = kind;
  d.type_name = type;
  d.version = "0.1.0";
  d.description = "a stub driver for tests";
  d.maturity = ENVD_MATURITY_EXPERIMENTAL;
  d.free_string = stub_free;
  d.builder = kind == ENVD_KIND_BUILDER ? &kStubBuilderTable : nullptr;
  d.runner = kind == ENVD_KIND_RUNNER ? &kStubRunnerTable : nullptr;
  return d;
}

// The facts a scan of a valid module of `kind` named `type` would record.
inline ModuleInfo usable_facts(Kind kind, const std::string& type) {
  ModuleInfo info;
  info.ok = true;
  info.type = type;
  info.kind = kind;
  info.version = "0.1.0";
  info.description = "facts for tests";
  info.maturity = ENVD_MATURITY_STABLE;
  info.abi_major = ENVD_ABI_MAJOR;
  info.abi_minor = ENVD_ABI_MINOR;
  return info;
}

}  // namespace envd::plugin::testing
