#include "context/store_parse.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <boost/json/basic_parser_impl.hpp>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "context/record.hpp"
#include "util/json.hpp"
#include "util/prefault.hpp"
#include "util/text.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using boost::system::error_code;

constexpr std::string_view kRecovery =
    "; fix it or move it aside to start over with the default context";

Error corrupt(const fs::path& file, const std::string& reason) {
  return corrupt_store(file, reason);
}

// The contexts of a list, by the value of one of their fields: an
// open-addressing table sized once, so no allocation per context (a
// std::unordered_set allocates a node each) and no sort.
class FieldIndex {
 public:
  FieldIndex(const std::vector<Context>& contexts, std::string Context::*field)
      : contexts_(contexts), field_(field), slots_(std::bit_ceil(2 * contexts.size() + 2)) {}

  // The index of an earlier context whose field is equal to this one's; else
  // this one is added.
  std::optional<std::size_t> add(std::size_t index) {
    std::string_view value = contexts_[index].*field_;
    const std::size_t mask = slots_.size() - 1;  // at most half full: a probe ends soon
    for (std::size_t at = std::hash<std::string_view>{}(value)&mask;; at = (at + 1) & mask) {
      std::size_t& slot = slots_[at];
      if (slot == 0) {
        slot = index + 1;
        return std::nullopt;
      }
      if (contexts_[slot - 1].*field_ == value) return slot - 1;
    }
  }

 private:
  const std::vector<Context>& contexts_;
  std::string Context::*field_;
  std::vector<std::size_t> slots_;  // a context's index + 1; 0 is empty
};

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

// The Context member a string field fills; null for the fields that are not
// plain strings.
constexpr std::array<std::string Context::*, kFieldCount> kStringMembers = {
    &Context::name,   &Context::builder, &Context::builder_address,
    &Context::runner, nullptr,           nullptr,
    nullptr,          &Context::id};

// {"name":"a","builder":"b","builder_address":"","runner":"c"}: no record of
// the one-pass shape is shorter.
constexpr std::size_t kShortestRecord = 60;

// The field a record's key names, or kFieldCount. By length first: this runs
// for every key of every record.
Field field_named(std::string_view key) {
  auto is = [key](Field field) { return key == kFieldNames[field] ? field : kFieldCount; };
  switch (key.size()) {
    case 2:
      return is(kId);
    case 4:
      return is(kName);
    case 6:
      return is(kRunner);
    case 7:
      return is(kBuilder);
    case 14:
      return key[7] == 'a' ? is(kRunnerAddress) : is(kRunnerOptions);
    case 15:
      return key[8] == 'a' ? is(kBuilderAddress) : is(kBuilderOptions);
    default:
      return kFieldCount;
  }
}

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
        prefault_records();
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

  // The reserved room is made a batch of records at a time, just before the
  // records are written into it (util/prefault.hpp): one system call for
  // about ten pages instead of a fault for each, and never much room made
  // that no record uses.
  void prefault_records() {
    constexpr std::size_t kBatch = 128;
    auto& records = list.contexts;
    if (records.size() % kBatch != 0 || records.capacity() <= records.size()) return;
    const std::size_t count = std::min(kBatch, records.capacity() - records.size());
    util::prefault_for_writing(records.data() + records.size(), count * sizeof(Context));
  }

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
        field_ = field_named(key);
        if (field_ == kFieldCount) return false;
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
        if (field_ == kRunnerAddress) {
          record().runner_address.emplace(value);
          return true;
        }
        if (kStringMembers[field_] == nullptr) return false;  // options must be objects
        (record().*kStringMembers[field_]).assign(value);
        return true;
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
  FieldIndex names(list.contexts, &Context::name);
  FieldIndex ids(list.contexts, &Context::id);
  for (std::size_t index = 0; index < list.contexts.size(); ++index) {
    const Context& ctx = list.contexts[index];
    if (names.add(index)) {
      return Error(Errc::invalid_argument, "two contexts are named '" + ctx.name + "'");
    }
    if (ctx.id.empty()) continue;
    if (auto earlier = ids.add(index)) {
      return Error(Errc::invalid_argument, "contexts '" + list.contexts[*earlier].name + "' and '" +
                                               ctx.name + "' share the id '" + ctx.id + "'");
    }
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
  // Room for as many records as the text can hold, rather than moving them
  // on each regrowth into pages touched for the first time. Untouched room
  // costs no page, but address space it does: past a few thousand records
  // (no store anyone keeps by hand) the list grows as usual.
  constexpr std::size_t kMostReserved = 4096;
  parser.handler().list.contexts.reserve(
      std::min(text.size() / kShortestRecord + 1, kMostReserved));
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
  if (std::string key = util::first_repeated_key(text); !key.empty()) {
    return corrupt(file, "the key '" + util::printable(key, 64) +
                             "' appears twice in one object, and only one can be kept");
  }
  if (auto inexact = util::first_inexact_number(text, *parsed)) {
    return corrupt(file, util::inexact_number_reason(*inexact));
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

Error corrupt_store(const fs::path& file, const std::string& reason) {
  return Error(Errc::invalid_argument,
               "context store " + quoted(file) + " is corrupt: " + reason + std::string(kRecovery));
}

Result<ContextList> parse_store(std::string_view text, const fs::path& file) {
  if (auto list = read_store_in_one_pass(text)) {
    list->file = file;
    return std::move(*list);
  }
  return read_store_tree(text, file);
}

}  // namespace envd::context
