// A context: which builder and which runner envd uses, and where they are.
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envd/result.hpp"

namespace envd::context {

// Driver options as stored: string keys to string values.
using Options = std::map<std::string, std::string>;

struct Context {
  std::string name;
  std::string builder;                        // driver type, e.g. "docker-container"
  std::string builder_address;                // normalised, without scheme
  std::string runner;                         // driver type, e.g. "docker"
  std::optional<std::string> runner_address;  // absent when none was given
  Options builder_options;
  Options runner_options;
  // Names the context's private directory (contexts.d/<id>); never changes, so a
  // rename touches only the store file.
  std::string id;
  // Fields this version does not know, kept so a rewrite loses nothing.
  boost::json::object unknown_fields;

  // "<builder>://<builder_address>", as every listing shows it.
  std::string builder_endpoint() const { return builder + "://" + builder_address; }

  bool operator==(const Context&) const = default;
};

struct ContextList {
  // Empty: no current context stored. May name a context that does not exist
  // (a hand-edited file); the store tolerates that and resolve_context reports it.
  std::string current;
  std::vector<Context> contexts;
  boost::json::object unknown_fields;
  // The file ContextStore::load() read this list from; empty for a list built in
  // memory. Only used to name the file in messages; never written.
  std::filesystem::path file;

  // The context called `name`, or null. Valid until `contexts` changes.
  Context* find(std::string_view name);
  const Context* find(std::string_view name) const;
};

// The seed's default context: "default", docker-container at envd_buildkitd,
// runner docker, no runner address, no options. Its id is empty: the store
// gives it one when it creates the file.
Context default_context();

// Context names: ^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$, at most 64 characters. The
// error (Errc::invalid_argument) names the offending value and states the rule:
//   invalid context name 'a/b': <kNameRule>
Status validate_name(std::string_view name);

// The rule as validate_name states it, for messages that add where a name came
// from ("invalid context name 'a/b' (from ENVD_CONTEXT): <rule>").
inline constexpr std::string_view kNameRule =
    "names start with a letter or digit and contain only letters, digits, '_', '.', '+' and "
    "'-' (at most 64 characters)";

// A fresh random id for a new context (16 lowercase hex digits, 64 bits from
// std::random_device, i.e. the kernel's random source).
std::string new_context_id();

}  // namespace envd::context
