#include "cli/context/builder_options.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <utility>

#include "cli/client/program.hpp"
#include "cli/context/common.hpp"
#include "cli/empty_values.hpp"
#include "cli/flag_values.hpp"
#include "context/stored_files.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

bool contains(const std::vector<std::string>& keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

}  // namespace

void add_option_flags(CLI::App* cmd, OptionFlags& flags, OptionVerb verb) {
  const bool update = verb == OptionVerb::update;
  cmd->add_option("--builder-opt", flags.builder_opts,
                  update ? "Builder driver option KEY=VALUE (repeatable; a repeated KEY adds to a "
                           "comma-separated list, where \"A,B\" is one item; KEY= removes it)"
                         : "Builder driver option KEY=VALUE (repeatable; a repeated KEY adds to a "
                           "comma-separated list, where \"A,B\" is one item)")
      ->allow_extra_args(false);
  // On update '' removes the file or name; on create it would mean nothing.
  auto removable = [&](const char* name, std::optional<std::string>& value, const char* help) {
    CLI::Option* option = cmd->add_option(
        name, value, update ? std::string(help) + " ('' removes it)" : std::string(help));
    if (update) allow_empty(option);
  };
  removable("--builder-tls-ca", flags.tls_ca,
            "CA certificate (PEM) to verify the builder with; copied into the store");
  removable("--builder-tls-cert", flags.tls_cert,
            "Client certificate (PEM) for mutual TLS; needs --builder-tls-key");
  removable("--builder-tls-key", flags.tls_key,
            "Client private key (PEM) for mutual TLS; copied into the store (0600)");
  removable("--builder-tls-servername", flags.tls_servername,
            "Name to verify in the builder's certificate (default: the address's host)");
  removable("--buildkitd-config", flags.buildkitd_config,
            "buildkitd.toml for a builder envd starts (docker-container); copied into the store");
}

Result<GivenOptions> given_options(const OptionFlags& flags) {
  GivenOptions given;
  for (const auto& opt : flags.builder_opts) {
    auto parsed = parse_key_value("--builder-opt", opt, "KEY=VALUE (KEY= removes KEY)");
    if (!parsed) return parsed.error();
    auto& [key, value] = *parsed;
    auto [it, fresh] = given.try_emplace(key, GivenOption{value, "--builder-opt " + key});
    if (!fresh) {
      if (value.empty() || it->second.value.empty()) {
        return Error(Errc::invalid_argument, "--builder-opt " + util::printable(key) +
                                                 " is given twice, once empty (which removes it)");
      }
      it->second.value += "," + value;
    }
  }
  auto named = [&](const std::optional<std::string>& value, const std::string& key,
                   const std::string& flag) -> Status {
    if (!value) return {};
    if (given.count(key) != 0) {
      return Error(Errc::invalid_argument,
                   flag + " and --builder-opt " + key + " set the same option; give one");
    }
    given[key] = GivenOption{*value, flag};
    return {};
  };
  if (auto st = named(flags.tls_ca, "tls-ca", "--builder-tls-ca"); !st) return st.error();
  if (auto st = named(flags.tls_cert, "tls-cert", "--builder-tls-cert"); !st) return st.error();
  if (auto st = named(flags.tls_key, "tls-key", "--builder-tls-key"); !st) return st.error();
  if (auto st = named(flags.tls_servername, "tls-servername", "--builder-tls-servername"); !st) {
    return st.error();
  }
  if (auto st = named(flags.buildkitd_config, "config", "--buildkitd-config"); !st) {
    return st.error();
  }
  return given;
}

Result<OptionChange> change_builder_options(Invocation& invocation, const std::string& builder,
                                            const context::Options& current,
                                            const GivenOptions& given,
                                            const std::filesystem::path& stored_dir) {
  auto driver = invocation.registry().builder(builder);
  if (!driver) return driver.error();
  std::vector<std::string> file_keys = driver->file_options();

  OptionChange change;
  context::Options wanted = current;
  for (const auto& [key, option] : given) {
    bool tls_flag = option.flag.rfind("--builder-tls-", 0) == 0;
    if (tls_flag && key != "tls-servername" && !contains(file_keys, key)) {
      return Error(Errc::invalid_argument,
                   "the '" + builder + "' builder takes no TLS material (" + option.flag + ")");
    }
    // Every value, a file's path too, reaches the driver as JSON text.
    if (auto st = check_utf8(option.flag, option.value); !st) {
      if (!contains(file_keys, key)) return st.error();
      return Error(Errc::invalid_argument, st.error().message() +
                                               " (give the file by a path that is, e.g. "
                                               "through a symbolic link)");
    }
    if (option.value.empty()) {
      if (wanted.erase(key) != 0 && contains(file_keys, key)) change.removed_files.push_back(key);
      continue;
    }
    wanted[key] = option.value;
  }
  auto normalized = driver->normalize_options(wanted);
  if (!normalized) return normalized.error();
  change.options = std::move(*normalized);

  for (const auto& [key, option] : given) {
    if (option.value.empty() || !contains(file_keys, key)) continue;
    if (change.options.count(key) == 0) continue;  // the driver dropped it
    auto content = context::read_option_file(option.value, option.flag);
    if (!content) return content.error();
    if (!tls_file_block(key).empty()) {
      if (auto st = check_tls_file(key, *content, option.flag, option.value); !st) {
        return st.error();
      }
    }
    change.files[key] = std::move(*content);
    change.options[key] = context::stored_file_value(key);
  }
  // A client key that is not its certificate's would fail every handshake:
  // refused now, naming both files, one of which may be the stored one an
  // update keeps. Parsing certificates takes OpenSSL, which only envd-client
  // links (client/program.hpp hands such a command over).
  struct PairSide {
    std::string pem;
    std::string source;
    bool given = false;
  };
  auto side = [&](const std::string& key) -> Result<std::optional<PairSide>> {
    if (auto file = change.files.find(key); file != change.files.end()) {
      const GivenOption& option = given.at(key);
      return std::optional<PairSide>(
          PairSide{file->second, option.flag + " '" + util::printable(option.value) + "'", true});
    }
    auto kept = change.options.find(key);
    if (stored_dir.empty() || kept == change.options.end() ||
        kept->second != context::stored_file_value(key)) {
      return std::optional<PairSide>();
    }
    const std::string source = "the context's stored " + key;
    auto content = context::read_option_file((stored_dir / kept->second).string(), source);
    if (!content) return content.error();
    return std::optional<PairSide>(PairSide{std::move(*content), source, false});
  };
  // Likewise a CA file whose certificates OpenSSL cannot read (a truncated
  // copy, a block mangled by an editor).
  if (auto ca = change.files.find("tls-ca"); ca != change.files.end()) {
    const GivenOption& option = given.at("tls-ca");
    const std::string source = option.flag + " '" + util::printable(option.value) + "'";
    auto st = run_in_client(
        [&](const ClientApi& client) { return client.check_tls_ca(ca->second, source); });
    if (!st) return st.error();
  }
  auto cert = side("tls-cert");
  if (!cert) return cert.error();
  auto key = side("tls-key");
  if (!key) return key.error();
  if (*cert && *key && ((*cert)->given || (*key)->given)) {
    TlsPair pair{(*cert)->pem, (*key)->pem, (*cert)->source, (*key)->source};
    auto st =
        run_in_client([&pair](const ClientApi& client) { return client.check_tls_pair(pair); });
    if (!st) return st.error();
  }
  return change;
}

}  // namespace envd::cli
