// Internal to core/context: the one mapping between a Context and its JSON
// record, shared by the store file (contexts.json) and the export archive's
// meta.json, so both accept and write exactly the same fields.
//
// A record: {"name", "builder", "builder_address", "runner", "runner_address"
// (omitted when absent), "builder_options", "runner_options" (objects of strings,
// omitted when empty), "id" (store only)} plus any fields this version does not
// know, kept in their order after the known ones.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "context/context.hpp"
#include "envd/result.hpp"

namespace envd::context {

enum class RecordKind {
  store,    // contexts.json: "id" allowed (and written when set)
  archive,  // meta.json: "id" and "current" refused, no id written
};

// Reads a record. Every failure is Errc::invalid_argument with the message
// "<what>: <reason>", e.g. "<what>: field 'builder' must be a string". The
// context passes check_context(). A store record without "id" gets an empty id.
Result<Context> context_from_json(const boost::json::value& value, std::string_view what,
                                  RecordKind kind);

// The record for `context`: known fields in the order above, then its unknown
// fields (any that collide with a known name are dropped).
boost::json::object context_to_json(const Context& context, RecordKind kind);

// The rules on one context that the store and the archive share: a valid name,
// non-empty builder and runner types, and (for the store) an empty or valid id.
// The message is the bare reason ("field 'runner' must not be empty").
Status check_context(const Context& context, RecordKind kind);

// Ids name directories: 1-64 of [A-Za-z0-9_-]. new_context_id() makes such ids.
bool is_valid_id(std::string_view id);

// The id a stored context without one (a hand-written entry) is given when it
// is loaded: 16 hex digits derived from its name and `attempt` (0, then 1, 2...
// while it collides with an id already taken). Deterministic, so the context
// keeps the same private directory across runs until a write records the id.
std::string derived_context_id(std::string_view name, unsigned attempt);

}  // namespace envd::context
