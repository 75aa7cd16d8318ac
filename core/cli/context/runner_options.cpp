#include "cli/context/runner_options.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "cli/client/program.hpp"
#include "cli/context/common.hpp"
#include "cli/empty_values.hpp"
#include "cli/flag_values.hpp"
#include "context/stored_files.hpp"
#include "util/text.hpp"

namespace envd::cli {

void add_runner_option_flags(CLI::App* cmd, RunnerOptionFlags& flags, OptionVerb verb) {
  const bool update = verb == OptionVerb::update;
  cmd->add_option("--runner-opt", flags.opts,
                  update ? "Runner driver option KEY=VALUE, repeatable (KEY= removes it; e.g. "
                           "ssh-port=2222 for envd-server)"
                         : "Runner driver option KEY=VALUE, repeatable (e.g. ssh-port=2222 for "
                           "envd-server)")
      ->allow_extra_args(false);
  const std::string ca_help =
      "CA certificate (PEM) to verify an https:// runner with (envd-server); copied into the "
      "store";
  CLI::Option* ca = cmd->add_option("--runner-tls-ca", flags.tls_ca,
                                    update ? ca_help + " ('' removes it)" : ca_help);
  if (update) allow_empty(ca);
}

Result<OptionChange> change_runner_options(Invocation& invocation, const std::string& runner,
                                           const context::Options& current,
                                           const RunnerOptionFlags& flags) {
  OptionChange change;
  change.options = current;
  if (!flags.any()) return change;
  auto driver = invocation.registry().runner(runner);
  if (!driver) return driver.error();
  auto keys = driver->file_options();
  context::Options wanted = current;
  std::map<std::string, std::string> given;
  for (const auto& opt : flags.opts) {
    if (auto st = check_utf8("--runner-opt", opt); !st) return st.error();
    auto eq = opt.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(Errc::invalid_argument,
                   "invalid --runner-opt '" + opt + "': expected KEY=VALUE (KEY= removes KEY)");
    }
    std::string key = opt.substr(0, eq);
    std::string value = opt.substr(eq + 1);
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
      std::string message = "--runner-opt ";
      message.append(key).append(" names a file; use --").append(key);
      return Error(Errc::invalid_argument, message);
    }
    if (auto [it, fresh] = given.try_emplace(key, value); !fresh && it->second != value) {
      return Error(Errc::invalid_argument, "--runner-opt " + key + " is given twice");
    }
    if (value.empty()) {
      wanted.erase(key);
    } else {
      wanted[key] = value;
    }
  }
  const auto& flag = flags.tls_ca;
  if (flag && std::find(keys.begin(), keys.end(), kRunnerTlsCaKey) == keys.end()) {
    return Error(Errc::invalid_argument,
                 "the '" + runner + "' runner takes no TLS material (--runner-tls-ca)");
  }
  if (flag && flag->empty()) {
    if (wanted.erase(kRunnerTlsCaKey) != 0) change.removed_files.push_back(kRunnerTlsCaKey);
  } else if (flag) {
    wanted[kRunnerTlsCaKey] = *flag;
  }
  auto normalized = driver->normalize_options(wanted);
  if (!normalized) return normalized.error();
  change.options = std::move(*normalized);
  if (!flag || flag->empty()) return change;
  auto content = context::read_option_file(*flag, "--runner-tls-ca");
  if (!content) return content.error();
  if (auto st = check_tls_file(kRunnerTlsCaKey, *content, "--runner-tls-ca", *flag); !st) {
    return st.error();
  }
  // The certificates themselves are read with OpenSSL, in envd-client.
  const std::string source = "--runner-tls-ca '" + util::printable(*flag) + "'";
  if (auto st = run_in_client(
          [&](const ClientApi& client) { return client.check_tls_ca(*content, source); });
      !st) {
    return st.error();
  }
  change.files[kRunnerTlsCaKey] = std::move(*content);
  change.options[kRunnerTlsCaKey] = context::stored_file_value(kRunnerTlsCaKey);
  return change;
}

Status check_runner_tls_ca(const context::Context& ctx) {
  if (ctx.runner_options.count(kRunnerTlsCaKey) == 0 || !ctx.runner_address ||
      !ctx.runner_address->starts_with("http://")) {
    return {};
  }
  return Error(Errc::invalid_argument,
               "--runner-tls-ca verifies an https:// runner, but the runner address '" +
                   util::printable(*ctx.runner_address) +
                   "' is plain HTTP: give an https:// address, or remove the CA "
                   "(--runner-tls-ca '')");
}

}  // namespace envd::cli
