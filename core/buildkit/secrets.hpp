// Secrets: the session service that hands the daemon the values of
// `RUN --mount=type=secret` (/moby.buildkit.secrets.v1.Secrets/GetSecret).
//
// The values are loaded by the CLI before the build (core/cli/build_secrets.hpp)
// and kept in memory only: they are never written anywhere, logged, or put
// into a message. An id that was not given answers NOT_FOUND, as BuildKit's
// own provider does; the daemon then fails the step, or skips the mount when
// it is optional (`required=false`).
//
// Thread-safety: the store is immutable once the provider is constructed; the
// service may run on several threads at once.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "buildkit/attachable.hpp"

namespace envd::buildkit {

// Secret id -> value (any bytes).
using SecretStore = std::map<std::string, std::string, std::less<>>;

// The largest value BuildKit's session provider serves (500 KiB); the CLI
// refuses bigger ones before the build starts.
inline constexpr std::size_t kMaxSecretSize = std::size_t{500} * 1024;

class SecretsProvider : public Attachable {
 public:
  explicit SecretsProvider(SecretStore secrets);
  ~SecretsProvider() override;
  SecretsProvider(const SecretsProvider&) = delete;
  SecretsProvider& operator=(const SecretsProvider&) = delete;

  // The value GetSecret answers for `id`, or nullptr (NOT_FOUND).
  const std::string* find(std::string_view id) const;

  void register_on(grpc::ServerBuilder& builder) override;
  // {"/moby.buildkit.secrets.v1.Secrets/GetSecret"}
  std::vector<std::string> methods() const override;

 private:
  class Service;
  SecretStore secrets_;
  std::unique_ptr<Service> service_;
};

}  // namespace envd::buildkit
