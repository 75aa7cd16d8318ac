// A context: which builder and which runner envd uses, and where they are.
#pragma once

#include <boost/json/object.hpp>
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
};

struct ContextList {
  std::string current;  // empty: no current context stored
  std::vector<Context> contexts;
  boost::json::object unknown_fields;

  Context* find(std::string_view name);
  const Context* find(std::string_view name) const;
};

// The seed's default context: "default", docker-container at envd_buildkitd,
// runner docker.
Context default_context();

// Context names: ^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$, at most 64 characters. The
// error names the offending value and states the rule.
Status validate_name(std::string_view name);

// A fresh random id for a new context (16 lowercase hex digits).
std::string new_context_id();

}  // namespace envd::context
