// Internal to core/plugin: what the core reads from a module descriptor.
//
// describe_descriptor() applies the ABI rules of plugin_abi.h to a descriptor
// and returns the facts it could read together with the verdict. The same check
// runs in the scanning child, when a module is loaded into the core, and for
// built-in drivers, so all three refuse exactly the same things.
//
// The facts also cross the scanner's pipe and live in the manifest cache as a
// JSON object; facts_to_json/facts_from_json are the one mapping for both.
#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "envd/plugin_abi.h"
#include "plugin/registry.hpp"

namespace envd::plugin {

// The size of each struct up to its last field in ABI 1.0. A module may send a
// longer struct (a later minor it was built with); never a shorter one.
// NOLINTBEGIN(bugprone-sizeof-expression): the pointer member's size is meant
inline constexpr size_t kDescriptorSizeV1_0 =
    offsetof(envd_plugin_descriptor, runner) + sizeof(envd_plugin_descriptor::runner);
// NOLINTEND(bugprone-sizeof-expression)
inline constexpr size_t kBuilderTableSizeV1_0 =
    offsetof(envd_builder_vtable, remove) + sizeof(envd_builder_vtable::remove);
inline constexpr size_t kRunnerTableSizeV1_0 =
    offsetof(envd_runner_vtable, remove) + sizeof(envd_runner_vtable::remove);

// ABI 1.1 appended file_options to the descriptor.
inline constexpr size_t kDescriptorSizeV1_1 =
    offsetof(envd_plugin_descriptor, file_options) + sizeof(envd_plugin_descriptor::file_options);
inline constexpr size_t kMaxFileOptions = 16;

// ABI 1.2 appended set_host to the descriptor.
inline constexpr size_t kDescriptorSizeV1_2 =
    offsetof(envd_plugin_descriptor, set_host) + sizeof(envd_plugin_descriptor::set_host);

// Hands `host` to the module of `descriptor` if it takes one (ABI 1.2's
// set_host; older modules and modules that set it NULL take none).
void bind_host(const envd_plugin_descriptor* descriptor, const envd_host_api* host);

// The rule for type names: ^[a-z0-9][a-z0-9-]{0,31}$.
bool is_valid_type_name(std::string_view name);

// Checks `descriptor` (which may be null) and returns the facts read from it:
// ok and empty reason when every rule holds, else ok == false and reason naming
// the first rule broken ("needs ABI 2.0, this envd has 1.0"). Fields beyond what
// the rules allowed reading are left default. `path` is left empty.
ModuleInfo describe_descriptor(const envd_plugin_descriptor* descriptor);

// The descriptor's file options (ABI 1.1; empty for a 1.0 module or NULL).
// Precondition: describe_descriptor() accepted the descriptor.
std::vector<std::string> file_options(const envd_plugin_descriptor* descriptor);

// The facts of `info` (everything but the path) as a JSON object, and back.
// facts_from_json returns nullopt for an object that does not have the shape.
boost::json::object facts_to_json(const ModuleInfo& info);
std::optional<ModuleInfo> facts_from_json(const boost::json::object& object);

}  // namespace envd::plugin
