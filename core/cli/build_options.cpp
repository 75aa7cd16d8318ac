#include "cli/build_options.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "cli/flag_values.hpp"
#include "envd/csv.hpp"
#include "output/image_name.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

Error invalid(const std::string& flag, const std::string& value, const std::string& why) {
  return Error(Errc::invalid_argument,
               "invalid " + flag + " '" + util::printable(value, 300) + "': " + why);
}

// The key=value fields of one CSV record; a field without '=' is refused
// unless it is the only one (`bare` then receives it).
Result<std::map<std::string, std::string>> fields_of(const std::string& flag,
                                                     const std::string& value,
                                                     std::optional<std::string>* bare) {
  auto fields = sdk::split_csv_record(value, flag);
  if (!fields) return fields.error();
  std::map<std::string, std::string> out;
  for (const auto& field : *fields) {
    auto eq = field.find('=');
    if (eq == std::string::npos) {
      if (bare != nullptr && fields->size() == 1 && !field.empty()) {
        *bare = field;
        return out;
      }
      return invalid(flag, value, "field '" + field + "' is not KEY=VALUE");
    }
    std::string key = field.substr(0, eq);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (key.empty()) return invalid(flag, value, "a field has no key");
    if (out.count(key) != 0) return invalid(flag, value, "'" + key + "' is given twice");
    out[key] = field.substr(eq + 1);
  }
  return out;
}

// `path` made absolute and normal, without a trailing separator.
Result<fs::path> absolute_dir(const std::string& path) {
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec) return Error(Errc::invalid_argument, "cannot resolve '" + path + "': " + ec.message());
  fs::path normal = absolute.lexically_normal();
  if (normal.has_relative_path() && normal.filename().empty()) normal = normal.parent_path();
  return normal;
}

Result<buildkit::CacheEntry> parse_cache(const std::string& flag, const std::string& value,
                                         bool exporting) {
  if (value.empty()) return invalid(flag, value, "expected type=TYPE[,KEY=VALUE...] or a REF");
  if (auto st = check_utf8(flag, value); !st) return st.error();
  std::optional<std::string> bare;
  auto fields = fields_of(flag, value, &bare);
  if (!fields) return fields.error();
  buildkit::CacheEntry entry;
  if (bare) {
    // buildx: a bare value is a registry reference.
    entry.type = "registry";
    entry.attrs["ref"] = *bare;
    if (auto st = output::validate_image_reference(*bare); !st) {
      return invalid(flag, value, st.error().message());
    }
    return entry;
  }
  auto type = fields->find("type");
  if (type == fields->end() || type->second.empty()) {
    return invalid(flag, value, "type is missing (type=registry, local, inline, ...)");
  }
  entry.type = type->second;
  fields->erase(type);
  entry.attrs = std::move(*fields);
  const char* dir_key = exporting ? "dest" : "src";
  if (entry.type == "registry") {
    if (entry.attrs.count("ref") == 0 || entry.attrs["ref"].empty()) {
      return invalid(flag, value, "type=registry needs ref=REF");
    }
    if (auto st = output::validate_image_reference(entry.attrs["ref"]); !st) {
      return invalid(flag, value, st.error().message());
    }
  } else if (entry.type == "local") {
    auto dir = entry.attrs.find(dir_key);
    if (dir == entry.attrs.end() || dir->second.empty()) {
      return invalid(flag, value, std::string("type=local needs ") + dir_key + "=DIR");
    }
    auto absolute = absolute_dir(dir->second);
    if (!absolute) return invalid(flag, value, absolute.error().message());
    dir->second = absolute->string();
    // A cache directory that does not exist yet (a CI job's first run) is
    // skipped with a warning when the build starts, as buildx does; one that
    // is a file is a mistake.
    std::error_code ec;
    auto kind = fs::status(*absolute, ec).type();
    if (!exporting && kind != fs::file_type::not_found && kind != fs::file_type::directory) {
      return invalid(flag, value, "'" + dir->second + "' is not a directory");
    }
  } else if (entry.type == "inline") {
    if (!exporting) {
      return invalid(flag, value,
                     "type=inline is for --cache-to; import an inline cache with "
                     "type=registry,ref=IMAGE");
    }
  }
  if (entry.attrs.count("mode") != 0 && entry.attrs["mode"] != "min" &&
      entry.attrs["mode"] != "max") {
    return invalid(flag, value, "mode must be min or max");
  }
  return entry;
}

// RFC 4648 base64 through OpenSSL; nullopt when `text` is not base64.
std::optional<std::string> base64_decoded(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

bool valid_context_name(const std::string& name) {
  // As the Dockerfile frontend accepts them in FROM: a lower-case image-like name.
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '/' || c == ':';
  });
}

}  // namespace

Result<buildkit::CacheEntry> parse_cache_export(const std::string& flag, const std::string& value) {
  return parse_cache(flag, value, true);
}

Result<buildkit::CacheEntry> parse_cache_import(const std::string& flag, const std::string& value) {
  return parse_cache(flag, value, false);
}

Result<NamedContext> parse_build_context(const std::string& value) {
  const std::string flag = "--build-context";
  auto eq = value.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
    return invalid(flag, value, "expected NAME=DIR or NAME=docker-image://REF");
  }
  NamedContext named;
  named.name = value.substr(0, eq);
  std::string source = value.substr(eq + 1);
  if (!valid_context_name(named.name)) {
    return invalid(flag, value,
                   "the name must be lower case letters, digits and -_./: (as in FROM NAME)");
  }
  if (source.rfind("docker-image://", 0) == 0) {
    if (source.size() == std::string("docker-image://").size()) {
      return invalid(flag, value, "docker-image:// needs an image reference");
    }
    if (auto st = output::validate_image_reference(source.substr(15)); !st) {
      return invalid(flag, value, st.error().message());
    }
    named.image = source;
    return named;
  }
  if (auto scheme = source.find("://"); scheme != std::string::npos) {
    return invalid(flag, value,
                   "envd takes a directory or docker-image://REF here, not '" +
                       source.substr(0, scheme + 3) + "'");
  }
  auto dir = absolute_dir(source);
  std::error_code ec;
  if (!dir || !fs::is_directory(*dir, ec)) {
    return invalid(flag, value, "'" + source + "' is not a directory");
  }
  named.directory = *dir;
  return named;
}

Status add_frontend_flags(const FrontendFlags& flags, std::map<std::string, std::string>& attrs) {
  for (const auto& label : flags.labels) {
    // KEY=VALUE, or a bare KEY for an empty value (as docker build).
    if (auto st = check_utf8("--label", label); !st) return st;
    auto eq = label.find('=');
    if (eq == 0 || label.empty()) return invalid("--label", label, "expected KEY=VALUE or KEY");
    if (eq == std::string::npos) {
      attrs["label:" + label] = "";
    } else {
      attrs["label:" + label.substr(0, eq)] = label.substr(eq + 1);
    }
  }
  std::string hosts;
  for (const auto& host : flags.add_hosts) {
    if (auto st = check_utf8("--add-host", host); !st) return st;
    // docker's HOST:IP, where an IPv6 address holds colons itself; buildx
    // also takes HOST=IP. The frontend reads HOST=IP records.
    auto sep = host.find('=');
    if (sep == std::string::npos) sep = host.find(':');
    if (sep == std::string::npos || sep == 0 || sep + 1 == host.size()) {
      return invalid("--add-host", host, "expected HOST:IP");
    }
    std::string name = host.substr(0, sep);
    std::string ip = host.substr(sep + 1);
    // An IPv6 address may come in brackets, as docker 25 takes it.
    if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    if (ip == "host-gateway") {
      return invalid("--add-host", host,
                     "envd does not resolve docker's 'host-gateway' (the Engine's address for the "
                     "host): give the host's IP address");
    }
    // The frontend parses it as Go's net.ParseIP does, after the session and
    // the context are set up; inet_pton agrees on both forms (no leading
    // zeros in IPv4, no zone in IPv6).
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, ip.c_str(), &v4) != 1 && ::inet_pton(AF_INET6, ip.c_str(), &v6) != 1) {
      return invalid("--add-host", host,
                     "'" + util::printable(ip, 80) + "' is not an IPv4 or IPv6 address");
    }
    if (name.find_first_of(",= \t") != std::string::npos) {
      return invalid("--add-host", host, "'" + name + "' is not a host name");
    }
    if (!hosts.empty()) hosts += ',';
    hosts.append(name).append("=").append(ip);
  }
  if (!hosts.empty()) attrs["add-hosts"] = hosts;
  if (flags.pull) attrs["image-resolve-mode"] = "pull";
  for (const auto& named : flags.contexts) {
    attrs["context:" + named.name] = named.image.empty() ? "local:" + named.name : named.image;
  }
  return {};
}

json::object build_metadata(const std::map<std::string, std::string>& exporter_response) {
  json::object out;
  for (const auto& [key, value] : exporter_response) {
    if (auto decoded = base64_decoded(value)) {
      boost::system::error_code ec;
      json::value parsed = json::parse(*decoded, ec);
      if (!ec && parsed.is_object() && !parsed.as_object().empty()) {
        out[key] = std::move(parsed);
        continue;
      }
    }
    out[key] = value;
  }
  return out;
}

std::string image_id(const std::map<std::string, std::string>& exporter_response) {
  for (const char* key : {"containerimage.config.digest", "containerimage.digest"}) {
    auto it = exporter_response.find(key);
    if (it != exporter_response.end() && !it->second.empty()) return it->second;
  }
  return {};
}

void record_engine_push(std::map<std::string, std::string>& exporter_response,
                        const std::vector<std::string>& names, const std::string& manifest_digest) {
  if (!names.empty() && !exporter_response.count("image.name")) {
    std::string joined;
    for (const auto& name : names) {
      if (!joined.empty()) joined += ',';
      joined += name;
    }
    exporter_response["image.name"] = joined;
  }
  if (manifest_digest.empty()) return;
  auto reported = exporter_response.find("containerimage.digest");
  if (reported != exporter_response.end() &&
      !exporter_response.count("containerimage.config.digest")) {
    exporter_response["containerimage.config.digest"] = reported->second;
  }
  exporter_response["containerimage.digest"] = manifest_digest;
}

}  // namespace envd::cli
