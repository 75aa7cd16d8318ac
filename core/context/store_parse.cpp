#include "context/store_parse.hpp"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "context/record.hpp"
#include "util/json.hpp"
#include "util/text.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using boost::system::error_code;

constexpr std::string_view kRecovery =
    "; fix it or move it aside to start over with the default context";

Error corrupt(const fs::path& file, const std::string& reason) {
  return Error(Errc::invalid_argument,
               "context store " + quoted(file) + " is corrupt: " + reason + std::string(kRecovery));
}

// A name or id and the index of its context in the list.
using Keyed = std::pair<std::string_view, std::size_t>;

// Of the keys that repeat, the one a walk in list order meets again first: the
// indexes of its first and second context. Sorted hashes rather than a hash
// set: no allocation per context, for a list read on every TAB of shell
// completion.
std::optional<std::pair<std::size_t, std::size_t>> first_repeat(const std::vector<Keyed>& keys) {
  std::vector<std::pair<std::size_t, std::size_t>> hashed;  // hash, position in keys
  hashed.reserve(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    hashed.emplace_back(std::hash<std::string_view>{}(keys[i].first), i);
  }
  std::sort(hashed.begin(), hashed.end());  // by hash, then in list order
  std::optional<std::pair<std::size_t, std::size_t>> first;
  for (std::size_t begin = 0, end = 0; begin < hashed.size(); begin = end) {
    end = begin + 1;
    while (end < hashed.size() && hashed[end].first == hashed[begin].first) ++end;
    // Equal hashes, almost always equal keys: the first one met again.
    for (std::size_t j = begin + 1; j < end; ++j) {
      const Keyed& later = keys[hashed[j].second];
      if (first && later.second >= first->second) break;
      auto earlier =
          std::find_if(hashed.begin() + static_cast<std::ptrdiff_t>(begin),
                       hashed.begin() + static_cast<std::ptrdiff_t>(j),
                       [&](const auto& h) { return keys[h.second].first == later.first; });
      if (earlier != hashed.begin() + static_cast<std::ptrdiff_t>(j)) {
        first.emplace(keys[earlier->second].second, later.second);
        break;
      }
    }
  }
  return first;
}

// The fields of a stored record, as bits of a mask of those seen.
enum Field : unsigned {
  kName,
  kBuilder,
  kBuilderAddress,
  kRunner,
  kRunnerAddress,
  kBuilderOptions,
  kRunnerOptions,
  kId,
  kFieldCount,
};
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "name",           "builder",         "builder_address", "runner",
    "runner_address", "builder_options", "runner_options",  "id"};
constexpr unsigned kRequired =
    (1U << kName) | (1U << kBuilder) | (1U << kBuilderAddress) | (1U << kRunner);

// basic_parser's handler for the one-pass reader. Every callback that meets
// something off the usual shape sets an error and returns false, which stops
// the parse (the parser needs both); the caller then hands the text to the
// tree reader. The error is never shown.
class OnePassHandler {
 public:
  // No limits beyond the parser's own (the tree reader has the same).
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);

  ContextList list;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code& ec) {
    return go_on(ec, level_ == Level::done && seen_contexts_);
  }

  bool on_object_begin(error_code& ec) { return go_on(ec, object_begins()); }
  bool on_object_end(std::size_t, error_code& ec) { return go_on(ec, object_ends()); }
  bool on_array_begin(error_code& ec) { return go_on(ec, array_begins()); }
  bool on_array_end(std::size_t, error_code& ec) { return go_on(ec, array_ends()); }

  bool on_key_part(json::string_view part, std::size_t, error_code&) {
    pending_.append(part.data(), part.size());
    return true;
  }

  bool on_key(json::string_view last, std::size_t, error_code& ec) {
    bool ok = take_key(whole(last));
    pending_.clear();
    return go_on(ec, ok);
  }

  bool on_string_part(json::string_view part, std::size_t, error_code&) {
    pending_.append(part.data(), part.size());
    return true;
  }

  bool on_string(json::string_view last, std::size_t, error_code& ec) {
    bool ok = take_string(whole(last));
    pending_.clear();
    return go_on(ec, ok);
  }

  bool on_null(error_code& ec) {
    // A null runner address is an absent one.
    return go_on(ec, level_ == Level::record && field_ == kRunnerAddress);
  }

  // Numbers, booleans and comments have no place in the store envd writes.
  bool on_number_part(json::string_view, error_code& ec) { return go_on(ec, false); }
  bool on_int64(std::int64_t, json::string_view, error_code& ec) { return go_on(ec, false); }
  bool on_uint64(std::uint64_t, json::string_view, error_code& ec) { return go_on(ec, false); }
  bool on_double(double, json::string_view, error_code& ec) { return go_on(ec, false); }
  bool on_bool(bool, error_code& ec) { return go_on(ec, false); }
  bool on_comment_part(json::string_view, error_code& ec) { return go_on(ec, false); }
  bool on_comment(json::string_view, error_code& ec) { return go_on(ec, false); }

 private:
  enum class Level { none, top, contexts, record, options, done };
  enum class TopKey { none, current, contexts };

  static bool go_on(error_code& ec, bool ok) {
    if (!ok) ec = json::error::syntax;
    return ok;
  }

  bool object_begins() {
    switch (level_) {
      case Level::none:
        level_ = Level::top;
        return true;
      case Level::contexts:
        level_ = Level::record;
        seen_ = 0;
        list.contexts.emplace_back();
        return true;
      case Level::record:
        if (field_ != kBuilderOptions && field_ != kRunnerOptions) return false;
        options_ = field_ == kBuilderOptions ? &record().builder_options : &record().runner_options;
        level_ = Level::options;
        return true;
      default:
        return false;
    }
  }

  bool object_ends() {
    switch (level_) {
      case Level::top:
        level_ = Level::done;
        return true;
      case Level::record:
        // The tree reader words a missing field, and an empty id.
        if ((seen_ & kRequired) != kRequired) return false;
        if ((seen_ & (1U << kId)) != 0 && record().id.empty()) return false;
        level_ = Level::contexts;
        return true;
      case Level::options:
        level_ = Level::record;
        return true;
      default:
        return false;
    }
  }

  bool array_begins() {
    if (level_ != Level::top || top_key_ != TopKey::contexts) return false;
    level_ = Level::contexts;
    return true;
  }

  bool array_ends() {
    if (level_ != Level::contexts) return false;
    level_ = Level::top;
    return true;
  }

  Context& record() { return list.contexts.back(); }

  // A key or string that came in parts is whole in pending_.
  std::string_view whole(json::string_view last) {
    if (pending_.empty()) return {last.data(), last.size()};
    pending_.append(last.data(), last.size());
    return pending_;
  }

  bool take_key(std::string_view key) {
    switch (level_) {
      case Level::top: {
        // A repeated key is the tree reader's to settle.
        if (key == "current" && !seen_current_) {
          seen_current_ = true;
          top_key_ = TopKey::current;
          return true;
        }
        if (key == "contexts" && !seen_contexts_) {
          seen_contexts_ = true;
          top_key_ = TopKey::contexts;
          return true;
        }
        return false;
      }
      case Level::record: {
        auto known = std::find(kFieldNames.begin(), kFieldNames.end(), key);
        if (known == kFieldNames.end()) return false;
        field_ = static_cast<Field>(known - kFieldNames.begin());
        if ((seen_ & (1U << field_)) != 0) return false;
        seen_ |= 1U << field_;
        return true;
      }
      case Level::options:
        option_key_.assign(key);
        return options_->count(option_key_) == 0;
      default:
        return false;
    }
  }

  bool take_string(std::string_view value) {
    switch (level_) {
      case Level::top:
        if (top_key_ != TopKey::current) return false;
        list.current.assign(value);
        return true;
      case Level::record:
        switch (field_) {
          case kName:
            record().name.assign(value);
            return true;
          case kBuilder:
            record().builder.assign(value);
            return true;
          case kBuilderAddress:
            record().builder_address.assign(value);
            return true;
          case kRunner:
            record().runner.assign(value);
            return true;
          case kRunnerAddress:
            record().runner_address.emplace(value);
            return true;
          case kId:
            record().id.assign(value);
            return true;
          default:
            return false;  // options must be objects
        }
      case Level::options:
        options_->emplace(std::move(option_key_), value);
        option_key_.clear();
        return true;
      default:
        return false;
    }
  }

  Level level_ = Level::none;
  TopKey top_key_ = TopKey::none;
  bool seen_current_ = false;
  bool seen_contexts_ = false;
  Field field_ = kFieldCount;  // the record field whose value comes next
  unsigned seen_ = 0;          // the record's fields so far, as bits
  Options* options_ = nullptr;
  std::string option_key_;
  std::string pending_;
};

}  // namespace

std::string quoted(const fs::path& path) { return "'" + util::printable(path.string()) + "'"; }

Status check_list(const ContextList& list) {
  // Sorted views rather than hash sets: no allocation per context, for a list
  // read on every TAB of shell completion.
  std::vector<Keyed> names;
  std::vector<Keyed> ids;
  names.reserve(list.contexts.size());
  ids.reserve(list.contexts.size());
  for (std::size_t index = 0; index < list.contexts.size(); ++index) {
    const Context& ctx = list.contexts[index];
    names.push_back({ctx.name, index});
    if (!ctx.id.empty()) ids.push_back({ctx.id, index});
  }
  // Reported: what a walk in list order meets first, a name before an id.
  auto name = first_repeat(names);
  auto id = first_repeat(ids);
  if (name && (!id || name->second <= id->second)) {
    return Error(Errc::invalid_argument,
                 "two contexts are named '" + list.contexts[name->second].name + "'");
  }
  if (id) {
    const Context& first = list.contexts[id->first];
    const Context& second = list.contexts[id->second];
    return Error(Errc::invalid_argument, "contexts '" + first.name + "' and '" + second.name +
                                             "' share the id '" + second.id + "'");
  }
  return {};
}

void derive_missing_ids(ContextList& list) {
  if (std::all_of(list.contexts.begin(), list.contexts.end(),
                  [](const Context& ctx) { return !ctx.id.empty(); })) {
    return;  // the usual store: every context was written with its id
  }
  std::set<std::string> taken;
  for (const Context& ctx : list.contexts) {
    if (!ctx.id.empty()) taken.insert(ctx.id);
  }
  for (Context& ctx : list.contexts) {
    if (!ctx.id.empty()) continue;
    for (unsigned attempt = 0;; ++attempt) {
      std::string id = derived_context_id(ctx.name, attempt);
      if (taken.insert(id).second) {
        ctx.id = std::move(id);
        break;
      }
    }
  }
}

std::optional<ContextList> read_store_in_one_pass(std::string_view text) {
  json::basic_parser<OnePassHandler> parser{json::parse_options{}};
  error_code ec;
  // more = false: the text is the whole document; trailing characters stop
  // short of its end, as they fail the tree reader.
  std::size_t consumed = parser.write_some(false, text.data(), text.size(), ec);
  if (ec || consumed != text.size() || !parser.done()) return std::nullopt;
  ContextList& list = parser.handler().list;
  for (const Context& ctx : list.contexts) {
    if (!check_context(ctx, RecordKind::store)) return std::nullopt;
  }
  if (!check_list(list)) return std::nullopt;
  derive_missing_ids(list);
  return std::move(list);
}

Result<ContextList> read_store_tree(std::string_view text, const fs::path& file) {
  auto parsed = util::parse_json(text, "context store " + quoted(file) + " is corrupt");
  if (!parsed) {
    return Error(parsed.error().code(), parsed.error().message() + std::string(kRecovery));
  }
  if (!parsed->is_object()) return corrupt(file, "the top level must be a JSON object");
  const json::object& top = parsed->get_object();

  ContextList list;
  list.file = file;
  if (const json::value* current = top.if_contains("current")) {
    if (!current->is_string()) return corrupt(file, "field 'current' must be a string");
    list.current = std::string(current->get_string());
  }
  const json::value* contexts = top.if_contains("contexts");
  if (contexts == nullptr) return corrupt(file, "field 'contexts' is missing");
  if (!contexts->is_array()) return corrupt(file, "field 'contexts' must be an array");
  const json::array& records = contexts->get_array();
  list.contexts.reserve(records.size());
  for (std::size_t index = 0; index < records.size(); ++index) {
    const json::value& record = records[index];
    auto ctx = context_from_json(record, "", RecordKind::store);
    if (!ctx) {
      // Only a failing record pays for its label: read again with it.
      std::string what = "contexts[" + std::to_string(index) + "]";
      if (record.is_object()) {
        if (const json::value* name = record.get_object().if_contains("name");
            name != nullptr && name->is_string()) {
          what += " ('" + util::printable(name->get_string(), 64) + "')";
        }
      }
      return corrupt(file, context_from_json(record, what, RecordKind::store).error().message());
    }
    list.contexts.push_back(std::move(*ctx));
  }
  if (auto st = check_list(list); !st) return corrupt(file, st.error().message());
  for (const auto& member : top) {
    if (member.key() != "current" && member.key() != "contexts") {
      list.unknown_fields.emplace(member.key(), member.value());
    }
  }
  derive_missing_ids(list);
  return list;
}

Result<ContextList> parse_store(std::string_view text, const fs::path& file) {
  if (auto list = read_store_in_one_pass(text)) {
    list->file = file;
    return std::move(*list);
  }
  return read_store_tree(text, file);
}

}  // namespace envd::context
