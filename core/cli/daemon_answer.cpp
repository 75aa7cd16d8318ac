#include "cli/daemon_answer.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <string>
#include <utility>

#include "util/atomic_file.hpp"
#include "util/json.hpp"
#include "util/paths.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::int64_t kFormat = 1;

std::string serialize(const context::Context& context,
                      const std::vector<buildkit::Worker>& workers) {
  json::array list;
  for (const auto& worker : workers) {
    json::array platforms;
    for (const auto& platform : worker.platforms) platforms.emplace_back(platform);
    list.push_back(json::object{{"id", worker.id}, {"platforms", std::move(platforms)}});
  }
  return util::to_pretty_json(json::object{
      {"format", kFormat}, {"endpoint", context.builder_endpoint()}, {"workers", std::move(list)}});
}

// The strings of `value`, or nothing when it is not an array of strings.
std::optional<std::vector<std::string>> strings_of(const json::value* value) {
  if (value == nullptr || !value->is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& item : value->get_array()) {
    if (!item.is_string()) return std::nullopt;
    out.emplace_back(item.get_string());
  }
  return out;
}

}  // namespace

fs::path daemon_answer_file(const context::Context& context) {
  auto cache = util::cache_dir();
  if (!cache) return {};
  // Ids are hex digits and names [a-zA-Z0-9_.+-]; a hand-edited store may
  // hold anything, and such a context is simply not remembered.
  const std::string& key = context.id.empty() ? context.name : context.id;
  auto safe = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '+' ||
           c == '-';
  };
  if (key.empty() || key.front() == '.' || !std::all_of(key.begin(), key.end(), safe)) return {};
  return *cache / "daemons" / (key + ".json");
}

std::optional<std::vector<buildkit::Worker>> load_daemon_answer(const context::Context& context) {
  fs::path file = daemon_answer_file(context);
  if (file.empty()) return std::nullopt;
  auto text = util::read_file(file);
  if (!text) return std::nullopt;
  auto parsed = util::parse_json(*text, "daemon-answer cache");
  if (!parsed || !parsed->is_object()) return std::nullopt;
  const json::object& root = parsed->get_object();
  const json::value* format = root.if_contains("format");
  const json::value* endpoint = root.if_contains("endpoint");
  const json::value* workers = root.if_contains("workers");
  if (format == nullptr || !format->is_int64() || format->get_int64() != kFormat ||
      endpoint == nullptr || !endpoint->is_string() ||
      endpoint->get_string() != context.builder_endpoint() || workers == nullptr ||
      !workers->is_array()) {
    return std::nullopt;
  }
  std::vector<buildkit::Worker> out;
  for (const auto& item : workers->get_array()) {
    if (!item.is_object()) return std::nullopt;
    const json::value* id = item.get_object().if_contains("id");
    auto platforms = strings_of(item.get_object().if_contains("platforms"));
    if (id == nullptr || !id->is_string() || !platforms) return std::nullopt;
    buildkit::Worker worker;
    worker.id = std::string(id->get_string());
    worker.platforms = std::move(*platforms);
    out.push_back(std::move(worker));
  }
  return out;
}

void save_daemon_answer(const context::Context& context,
                        const std::vector<buildkit::Worker>& workers) {
  fs::path file = daemon_answer_file(context);
  if (file.empty()) return;
  std::string text = serialize(context, workers);
  if (auto old = util::read_file(file); old && *old == text) return;
  if (!util::create_directories(file.parent_path(), 0700)) return;
  fs::path lock_path = file;
  lock_path += ".lock";
  auto lock = util::FileLock::exclusive(lock_path);
  if (!lock) return;
  // A FIFO in its place would hold the build's end for ever (the write
  // opens it); the answer is only a speed-up, so it is not kept.
  if (util::holds_other_than_a_file(file)) return;
  (void)util::write_file_atomically(file, text, 0600, util::ReadOnlyFile::replace);
}

}  // namespace envd::cli
