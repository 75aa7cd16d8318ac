#include "cli/context/common.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "cli/flag_values.hpp"
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

bool version_asked(const CLI::App* cmd) {
  while (cmd->get_parent() != nullptr) cmd = cmd->get_parent();
  const CLI::Option* version = cmd->get_version_ptr();
  return version != nullptr && version->count() > 0;
}

bool words_left_over(const CLI::App* cmd) {
  while (cmd->get_parent() != nullptr) cmd = cmd->get_parent();
  return cmd->remaining_size(true) > 0;
}

void add_name_args(CLI::App* cmd, NameArgs& args) {
  // One positional name: as a vector's it would show as "[name...]" in the
  // usage line. A second is refused by CLI11 (usage_error in main.cpp words it).
  // Expected once rather than "0 or 1": CLI11 hands the words after `--` to a
  // command only while one of its positionals still expects a value, so
  // `context create -- demo` would lose its name; the name stays optional
  // (it is not required(), and --name may give it instead).
  cmd->add_option("name", args.positional, "Name of the context")->expected(1, 1);
  cmd->add_option("--name", args.flagged, "Name of the context")->allow_extra_args(false);
  // One name, NAME or --name: a command line without it (or with two) is
  // one envd cannot use as given, exit 2 like a missing operand elsewhere.
  // Checked once the parse is complete, so --help still answers, and
  // --version too (as under every other command).
  cmd->parse_complete_callback([cmd, &args] {
    if (version_asked(cmd) || words_left_over(cmd)) return;
    const std::size_t n = args.all().size();
    if (n == 0) throw CLI::ValidationError("a context name is required (NAME or --name NAME)");
    if (n > 1) throw CLI::ValidationError("expected one context name, got " + std::to_string(n));
  });
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
  if (auto st = check_utf8("--builder-address", address); !st) return st.error();
  auto driver = invocation.registry().builder(type);
  if (!driver) return driver.error();
  return driver->normalize_address(address);
}

Result<std::string> normalize_runner_address(Invocation& invocation, const std::string& type,
                                             const std::string& address) {
  if (auto st = check_utf8("--runner-address", address); !st) return st.error();
  auto driver = invocation.registry().runner(type);
  if (!driver) return driver.error();
  return driver->normalize_address(address);
}

std::string context_in_use(const context::ContextList& list, const Invocation& invocation) {
  return context::choose_context(list.current, invocation.context_flag).name;
}

Result<std::vector<std::string>> material_files(const context::ContextStore& store,
                                                const context::Context& ctx) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::path dir = store.data_dir(ctx);
  if (!fs::is_directory(fs::symlink_status(dir, ec))) return files;
  auto unreadable = [&](const fs::path& path) {
    return Error(Errc::permission,
                 "cannot read '" + util::printable(path.string()) + "': " + ec.message());
  };
  fs::recursive_directory_iterator it(dir, ec);
  if (ec) return unreadable(dir);
  for (const fs::recursive_directory_iterator end; it != end;) {
    // Named as stored, links not followed: a link in the store (which
    // export refuses) is shown where it is, not where it points.
    const fs::file_status status = it->symlink_status(ec);
    if (ec) return unreadable(it->path());
    std::string rel = it->path().lexically_relative(dir).generic_string();
    if (rel == context::kRuntimeDir) {
      // This machine's only (whatever stands there), as export leaves it.
      if (fs::is_directory(status)) it.disable_recursion_pending();
    } else if ((fs::is_regular_file(status) || fs::is_symlink(status)) &&
               rel != context::kRunnerLoginFile && !context::is_staged_file(rel)) {
      files.push_back(std::move(rel));
    }
    const fs::path current = it->path();
    it.increment(ec);
    if (ec) return unreadable(current);
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string_view tls_file_block(std::string_view key) {
  if (key == "tls-key") return "PRIVATE KEY";
  if (key == "tls-ca" || key == "tls-cert" || key == "runner-tls-ca") return "CERTIFICATE";
  return {};
}

bool is_ca_file(std::string_view key) { return key == "tls-ca" || key == "runner-tls-ca"; }

Status check_option_file(const std::string& key, std::string_view content, const std::string& what,
                         const std::string& name) {
  if (content.size() > context::kMaxOptionFileBytes) {
    return Error(Errc::invalid_argument, what + " '" + name + "' is larger than " +
                                             std::to_string(context::kMaxOptionFileBytes >> 20) +
                                             " MiB");
  }
  if (!tls_file_block(key).empty()) return check_tls_file(key, content, what, name);
  return {};
}

Status check_tls_file(std::string_view key, std::string_view content, const std::string& flag,
                      const std::string& value) {
  if (auto st = check_pem(content, flag, value, tls_file_block(key)); !st) return st;
  if (!is_ca_file(key)) return {};
  for (const auto& label : sdk::pem_labels(content)) {
    if (sdk::pem_label_is(label, "PRIVATE KEY")) {
      std::string message = flag;
      message.append(" '").append(value).append("' holds a private key (");
      message += util::printable(label, 40);
      message +=
          ") beside the CA's certificate: envd would store it and export it with the context; "
          "give the certificate alone (openssl x509 -in FILE -out CA.pem)";
      return Error(Errc::invalid_argument, std::move(message));
    }
  }
  return {};
}

Status check_pem(std::string_view content, const std::string& flag, const std::string& value,
                 std::string_view block) {
  auto found = sdk::pem_labels(content);
  const std::string file = flag + " '" + value + "'";
  if (block == "PRIVATE KEY" &&
      (std::find(found.begin(), found.end(), "ENCRYPTED PRIVATE KEY") != found.end() ||
       content.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos)) {
    // envd never asks for a passphrase; the connection would fail.
    return Error(Errc::invalid_argument,
                 file +
                     " is encrypted with a passphrase, which envd does not ask for: give the "
                     "key without one (openssl pkey -in KEY -out PLAIN-KEY)");
  }
  if (std::any_of(found.begin(), found.end(),
                  [&](std::string_view label) { return sdk::pem_label_is(label, block); })) {
    return {};
  }
  if (found.empty()) {
    return Error(Errc::invalid_argument, file + " is not a PEM file (no -----BEGIN line)");
  }
  std::string held;
  for (size_t i = 0; i < found.size() && i < 3; ++i) {
    held += (i == 0 ? "" : ", ") + util::printable(found[i], 40);
  }
  return Error(Errc::invalid_argument,
               file + " holds no " + std::string(block) + " block (it holds " + held + ")");
}

}  // namespace envd::cli
