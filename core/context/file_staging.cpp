#include "context/file_staging.hpp"

#include <filesystem>
#include <system_error>
#include <utility>

#include "context/stored_files.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;

// The temporary key a file option is staged under: files/.<key>.new, hidden
// and beside its stored name so that commit() is a rename in one directory.
std::string staged_key(const std::string& key) { return "." + key + ".new"; }

}  // namespace

StagedFiles::StagedFiles(const ContextStore& store, Context context)
    : store_(store), context_(std::move(context)) {}

StagedFiles::~StagedFiles() {
  for (const auto& key : staged_) remove_option_file(store_, context_, staged_key(key));
}

Status StagedFiles::stage(const std::map<std::string, std::string>& files) {
  for (const auto& [key, content] : files) {
    if (auto st = store_option_file(store_, context_, staged_key(key), content); !st) return st;
    staged_.push_back(key);
  }
  return {};
}

Status StagedFiles::commit(const std::vector<std::string>& removed) {
  fs::path dir = store_.data_dir(context_);
  for (const auto& key : staged_) {
    std::error_code ec;
    fs::rename(dir / stored_file_value(staged_key(key)), dir / stored_file_value(key), ec);
    if (ec) {
      return Error(Errc::internal, "cannot store the file of option '" + key + "' in '" +
                                       dir.string() + "': " + ec.message());
    }
  }
  staged_.clear();
  for (const auto& key : removed) remove_option_file(store_, context_, key);
  return {};
}

}  // namespace envd::context
