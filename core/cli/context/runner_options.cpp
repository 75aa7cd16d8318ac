#include "cli/context/runner_options.hpp"

#include <algorithm>
#include <utility>

#include "context/stored_files.hpp"

namespace envd::cli {

void add_runner_option_flags(CLI::App* cmd, std::optional<std::string>& flag) {
  cmd->add_option("--runner-tls-ca", flag,
                  "CA certificate (PEM) to verify an https:// runner with (envd-server); copied "
                  "into the store ('' removes it on update)");
}

Result<OptionChange> change_runner_options(Invocation& invocation, const std::string& runner,
                                           const context::Options& current,
                                           const std::optional<std::string>& flag) {
  OptionChange change;
  change.options = current;
  if (!flag) return change;
  auto driver = invocation.registry().runner(runner);
  if (!driver) return driver.error();
  auto keys = driver->file_options();
  if (std::find(keys.begin(), keys.end(), kRunnerTlsCaKey) == keys.end()) {
    return Error(Errc::invalid_argument,
                 "the '" + runner + "' runner takes no TLS material (--runner-tls-ca)");
  }
  context::Options wanted = current;
  if (flag->empty()) {
    if (wanted.erase(kRunnerTlsCaKey) != 0) change.removed_files.push_back(kRunnerTlsCaKey);
  } else {
    wanted[kRunnerTlsCaKey] = *flag;
  }
  auto normalized = driver->normalize_options(wanted);
  if (!normalized) return normalized.error();
  change.options = std::move(*normalized);
  if (flag->empty()) return change;
  auto content = context::read_option_file(*flag, "--runner-tls-ca");
  if (!content) return content.error();
  if (content->find("-----BEGIN ") == std::string::npos) {
    return Error(Errc::invalid_argument,
                 "--runner-tls-ca '" + *flag + "' is not a PEM file (no -----BEGIN line)");
  }
  change.files[kRunnerTlsCaKey] = std::move(*content);
  change.options[kRunnerTlsCaKey] = context::stored_file_value(kRunnerTlsCaKey);
  return change;
}

}  // namespace envd::cli
