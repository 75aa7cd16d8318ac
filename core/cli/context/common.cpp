#include "cli/context/common.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "context/resolve.hpp"
#include "context/stored_files.hpp"
#include "util/text.hpp"

namespace envd::cli {

namespace fs = std::filesystem;

std::vector<std::string> NameArgs::all() const {
  std::vector<std::string> names = positional;
  names.insert(names.end(), flagged.begin(), flagged.end());
  return names;
}

void add_name_args(CLI::App* cmd, NameArgs& args) {
  cmd->add_option("name", args.positional, "Name of the context");
  cmd->add_option("--name", args.flagged, "Name of the context")->allow_extra_args(false);
}

Result<std::string> one_context_name(const NameArgs& args) {
  std::vector<std::string> names = args.all();
  if (names.empty()) {
    return Error(Errc::invalid_argument, "a context name is required (NAME or --name NAME)");
  }
  if (names.size() > 1) {
    return Error(Errc::invalid_argument,
                 "expected one context name, got " + std::to_string(names.size()));
  }
  if (auto st = context::validate_name(names[0]); !st) return st.error();
  return names[0];
}

Status missing_context(const std::string& name) {
  return Error(Errc::not_found,
               "context '" + name + "' does not exist; 'envd context ls' lists the contexts");
}

Result<std::string> normalize_builder_address(Invocation& invocation, const std::string& type,
                                              const std::string& address) {
  auto driver = invocation.registry().builder(type);
  if (!driver) return driver.error();
  return driver->normalize_address(address);
}

Result<std::string> normalize_runner_address(Invocation& invocation, const std::string& type,
                                             const std::string& address) {
  auto driver = invocation.registry().runner(type);
  if (!driver) return driver.error();
  return driver->normalize_address(address);
}

std::string context_in_use(const context::ContextList& list, const Invocation& invocation) {
  return context::choose_context(list.current, invocation.context_flag).name;
}

std::vector<std::string> material_files(const context::ContextStore& store,
                                        const context::Context& ctx) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::path dir = store.data_dir(ctx);
  if (!fs::is_directory(dir, ec)) return files;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string rel = fs::relative(it->path(), dir, ec).string();
    if (rel != context::kRunnerLoginFile) files.push_back(std::move(rel));
  }
  std::sort(files.begin(), files.end());
  return files;
}

Status check_pem(std::string_view content, const std::string& flag, const std::string& value,
                 std::string_view block) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  std::vector<std::string> labels;
  for (size_t at = content.find(kBegin); at != std::string_view::npos;
       at = content.find(kBegin, at + 1)) {
    size_t end = content.find("-----", at + kBegin.size());
    if (end == std::string_view::npos) break;
    std::string_view label = content.substr(at + kBegin.size(), end - at - kBegin.size());
    if (label.size() >= block.size() && label.substr(label.size() - block.size()) == block) {
      return {};
    }
    if (labels.size() < 3) labels.push_back(util::printable(label, 40));
  }
  const std::string file = flag + " '" + value + "'";
  if (labels.empty()) {
    return Error(Errc::invalid_argument, file + " is not a PEM file (no -----BEGIN line)");
  }
  std::string held;
  for (const auto& label : labels) held += (held.empty() ? "" : ", ") + label;
  return Error(Errc::invalid_argument,
               file + " holds no " + std::string(block) + " block (it holds " + held + ")");
}

}  // namespace envd::cli
