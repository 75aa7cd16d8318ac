// Reading back what a build pushed to a (plain HTTP) test registry, with the
// real curl: the manifest's digest as the registry computes it, the manifest
// itself and the image config it points to. Test-only, header-only; failures
// are gtest failures and give empty results.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "envd/process.hpp"

namespace envd::test {

namespace registry_probe_detail {

inline const char* manifest_accept() {
  return "Accept: application/vnd.docker.distribution.manifest.v2+json, "
         "application/vnd.oci.image.manifest.v1+json, "
         "application/vnd.docker.distribution.manifest.list.v2+json, "
         "application/vnd.oci.image.index.v1+json";
}

// curl with `args`; its stdout, or "" (and a gtest failure) when it fails.
inline std::string curl(std::vector<std::string> args) {
  sdk::ProcessOptions options;
  options.argv = {"curl", "-fsS", "--max-time", "10"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.timeout = std::chrono::seconds(30);
  auto r = sdk::run_process(options);
  EXPECT_TRUE(r && r->succeeded()) << sdk::format_command(options.argv) << "\n"
                                   << (r ? r->err : r.error().message());
  return r && r->succeeded() ? r->out : std::string();
}

}  // namespace registry_probe_detail

// The digest the registry holds for repository:tag (Docker-Content-Digest of
// a HEAD of the manifest). `user` ("name:password") for a registry with auth.
inline std::string registry_digest(const std::string& registry, const std::string& repository,
                                   const std::string& tag, const std::string& user = "") {
  std::vector<std::string> args = {"-I", "-H", registry_probe_detail::manifest_accept()};
  if (!user.empty()) args.insert(args.end(), {"-u", user});
  args.push_back("http://" + registry + "/v2/" + repository + "/manifests/" + tag);
  std::string headers = registry_probe_detail::curl(args);
  for (size_t at = 0; at < headers.size();) {
    size_t nl = headers.find('\n', at);
    std::string line = headers.substr(at, nl - at);
    if (line.rfind("Docker-Content-Digest: ", 0) == 0 ||
        line.rfind("docker-content-digest: ", 0) == 0) {
      std::string digest = line.substr(23);
      while (!digest.empty() && (digest.back() == '\r' || digest.back() == ' ')) digest.pop_back();
      return digest;
    }
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  ADD_FAILURE() << "no digest in:\n" << headers;
  return {};
}

// The HTTP status of a HEAD of repository:reference's manifest (200 when the
// registry holds it, 404 when not; 0 when curl could not ask).
inline int registry_manifest_status(const std::string& registry, const std::string& repository,
                                    const std::string& reference) {
  sdk::ProcessOptions options;
  options.argv = {"curl",
                  "-sS",
                  "--max-time",
                  "10",
                  "-o",
                  "/dev/null",
                  "-w",
                  "%{http_code}",
                  "-I",
                  "-H",
                  registry_probe_detail::manifest_accept(),
                  "http://" + registry + "/v2/" + repository + "/manifests/" + reference};
  options.timeout = std::chrono::seconds(30);
  auto r = sdk::run_process(options);
  EXPECT_TRUE(r && r->succeeded()) << sdk::format_command(options.argv) << "\n"
                                   << (r ? r->err : r.error().message());
  return r && r->succeeded() ? std::atoi(r->out.c_str()) : 0;
}

// The manifest of repository:reference as JSON (an object; empty on failure).
inline boost::json::object registry_manifest(const std::string& registry,
                                             const std::string& repository,
                                             const std::string& reference) {
  std::string text = registry_probe_detail::curl(
      {"-H", registry_probe_detail::manifest_accept(),
       "http://" + registry + "/v2/" + repository + "/manifests/" + reference});
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return !ec && v.is_object() ? v.as_object() : boost::json::object{};
}

// The image config a single-platform manifest points to (empty on failure).
inline boost::json::object registry_image_config(const std::string& registry,
                                                 const std::string& repository,
                                                 const std::string& reference) {
  auto manifest = registry_manifest(registry, repository, reference);
  const auto* config = manifest.if_contains("config");
  if (config == nullptr || !config->is_object()) {
    ADD_FAILURE() << "no config in the manifest: " << boost::json::serialize(manifest);
    return {};
  }
  std::string digest(config->at("digest").as_string());
  std::string text = registry_probe_detail::curl(
      {"-L", "http://" + registry + "/v2/" + repository + "/blobs/" + digest});
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return !ec && v.is_object() ? v.as_object() : boost::json::object{};
}

}  // namespace envd::test
