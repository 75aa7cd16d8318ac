#include "context/record.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <utility>

#include "util/json.hpp"
#include "util/text.hpp"

namespace envd::context {
namespace {

namespace json = boost::json;

constexpr std::array<std::string_view, 8> kKnownFields = {
    "name",           "builder",         "builder_address", "runner",
    "runner_address", "builder_options", "runner_options",  "id"};

bool is_known(std::string_view key) {
  return std::find(kKnownFields.begin(), kKnownFields.end(), key) != kKnownFields.end();
}

Error invalid(std::string_view what, const std::string& reason) {
  return Error(Errc::invalid_argument, std::string(what) + ": " + reason);
}

Result<Options> read_options(const json::object& record, std::string_view key,
                             std::string_view what) {
  Options options;
  const json::value* v = record.if_contains(key);
  if (v == nullptr) return options;
  if (!v->is_object()) {
    return invalid(what, "field '" + std::string(key) + "' must be an object of strings");
  }
  for (const auto& [name, value] : v->get_object()) {
    if (!value.is_string()) {
      return invalid(what, "field '" + std::string(key) + "' must be an object of strings ('" +
                               util::printable(name, 64) + "' is not a string)");
    }
    options.emplace(std::string(name), std::string(value.get_string()));
  }
  return options;
}

json::object options_to_json(const Options& options) {
  json::object out;
  for (const auto& [key, value] : options) out[key] = value;
  return out;
}

}  // namespace

bool is_valid_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string derived_context_id(std::string_view name, unsigned attempt) {
  // FNV-1a, 64 bits: stable across platforms and library versions, unlike std::hash.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&hash](std::string_view bytes) {
    for (unsigned char c : bytes) {
      hash ^= c;
      hash *= 0x100000001b3ULL;
    }
  };
  mix("envd-context-id");
  mix(std::string_view("\0", 1));
  mix(name);
  mix(std::string_view("\0", 1));
  mix(std::to_string(attempt));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    id[static_cast<std::size_t>(i)] = kHex[hash & 0xf];
    hash >>= 4;
  }
  return id;
}

Status check_context(const Context& context, RecordKind kind) {
  if (auto st = validate_name(context.name); !st) return st;
  if (context.builder.empty())
    return Error(Errc::invalid_argument, "field 'builder' must not be empty");
  if (context.runner.empty())
    return Error(Errc::invalid_argument, "field 'runner' must not be empty");
  // What `context ls` prints as it is: a hand-edited escape sequence there
  // would drive the terminal, and a newline would break the table.
  // And UTF-8 throughout: JSON holds nothing else, so a byte that is not
  // would make the store unreadable to envd itself.
  auto plain = [](std::string_view key, std::string_view text) -> Status {
    if (!sdk::is_utf8(text)) {
      return Error(Errc::invalid_argument, "field '" + std::string(key) +
                                               "' must be UTF-8 text, which '" +
                                               util::printable(text, 64) + "' is not");
    }
    if (std::none_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7f'; })) {
      return {};
    }
    return Error(Errc::invalid_argument, "field '" + std::string(key) +
                                             "' must not hold control characters, as '" +
                                             util::printable(text, 64) + "' does");
  };
  if (auto st = plain("builder", context.builder); !st) return st;
  if (auto st = plain("builder_address", context.builder_address); !st) return st;
  if (auto st = plain("runner", context.runner); !st) return st;
  if (auto st = plain("runner_address", context.runner_address.value_or("")); !st) return st;
  for (const auto& [field, options] :
       {std::pair<std::string_view, const Options*>{"builder_options", &context.builder_options},
        {"runner_options", &context.runner_options}}) {
    for (const auto& [key, value] : *options) {
      if (!sdk::is_utf8(key) || !sdk::is_utf8(value)) {
        return Error(Errc::invalid_argument,
                     "field '" + std::string(field) + "': option '" + util::printable(key, 64) +
                         "=" + util::printable(value, 64) + "' is not UTF-8 text");
      }
    }
  }
  if (kind == RecordKind::store && !context.id.empty() && !is_valid_id(context.id)) {
    return Error(Errc::invalid_argument,
                 "field 'id' must be 1 to 64 letters, digits, '_' or '-', not '" +
                     util::printable(context.id, 64) + "'");
  }
  return {};
}

Result<Context> context_from_json(const json::value& value, std::string_view what,
                                  RecordKind kind) {
  if (!value.is_object()) return invalid(what, "a context must be a JSON object");
  const json::object& record = value.get_object();
  if (kind == RecordKind::archive) {
    for (std::string_view refused : {"id", "current"}) {
      if (record.contains(refused)) {
        return invalid(
            what, "must not carry '" + std::string(refused) + "' (the importing store assigns it)");
      }
    }
  }
  Context ctx;
  struct Field {
    std::string_view key;
    std::string* out;
  };
  for (const Field& field :
       {Field{"name", &ctx.name}, Field{"builder", &ctx.builder},
        Field{"builder_address", &ctx.builder_address}, Field{"runner", &ctx.runner}}) {
    auto text = util::get_string(record, field.key, what);
    if (!text) return text.error();
    *field.out = std::move(*text);
  }
  if (const json::value* address = record.if_contains("runner_address");
      address != nullptr && !address->is_null()) {
    if (!address->is_string()) return invalid(what, "field 'runner_address' must be a string");
    ctx.runner_address = std::string(address->get_string());
  }
  auto builder_options = read_options(record, "builder_options", what);
  if (!builder_options) return builder_options.error();
  ctx.builder_options = std::move(*builder_options);
  auto runner_options = read_options(record, "runner_options", what);
  if (!runner_options) return runner_options.error();
  ctx.runner_options = std::move(*runner_options);
  if (kind == RecordKind::store && record.contains("id")) {
    auto id = util::get_string(record, "id", what);
    if (!id) return id.error();
    if (id->empty()) return invalid(what, "field 'id' must not be empty");
    ctx.id = std::move(*id);
  }
  for (const auto& member : record) {
    if (!is_known(member.key())) ctx.unknown_fields.emplace(member.key(), member.value());
  }
  if (auto st = check_context(ctx, kind); !st) return st.error().wrap(std::string(what));
  return ctx;
}

json::object context_to_json(const Context& context, RecordKind kind) {
  json::object out;
  out["name"] = context.name;
  out["builder"] = context.builder;
  out["builder_address"] = context.builder_address;
  out["runner"] = context.runner;
  if (context.runner_address) out["runner_address"] = *context.runner_address;
  if (!context.builder_options.empty()) {
    out["builder_options"] = options_to_json(context.builder_options);
  }
  if (!context.runner_options.empty())
    out["runner_options"] = options_to_json(context.runner_options);
  if (kind == RecordKind::store && !context.id.empty()) out["id"] = context.id;
  for (const auto& member : context.unknown_fields) {
    if (is_known(member.key())) continue;
    if (kind == RecordKind::archive && member.key() == "current") continue;
    out.emplace(member.key(), member.value());
  }
  return out;
}

}  // namespace envd::context
