#include "buildkit/auth.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "github.com/moby/buildkit/session/auth/auth.grpc.pb.h"
#include "util/json.hpp"
#include "util/text.hpp"

namespace envd::buildkit {

namespace {

constexpr const char* kMethod = "/moby.filesync.v1.Auth/Credentials";

}  // namespace

class AuthProvider::Service final : public moby::filesync::v1::Auth::Service {
 public:
  explicit Service(const AuthProvider& owner) : owner_(owner) {}

  grpc::Status Credentials(grpc::ServerContext* /*context*/,
                           const moby::filesync::v1::CredentialsRequest* request,
                           moby::filesync::v1::CredentialsResponse* response) override {
    auto creds = owner_.credentials(request->host());
    response->set_username(std::move(creds.username));
    response->set_secret(std::move(creds.secret));
    return grpc::Status::OK;
  }

 private:
  const AuthProvider& owner_;
};

AuthProvider::AuthProvider(AuthOptions options)
    : options_(std::move(options)), service_(std::make_unique<Service>(*this)) {}

AuthProvider::~AuthProvider() = default;

RegistryCredentials AuthProvider::credentials(std::string_view host) const {
  auto creds = lookup_registry_credentials(options_, host);
  if (creds) return *creds;
  std::call_once(warned_, [&] {
    std::fprintf(stderr, "envd: warning: no registry credentials for '%s': %s\n",
                 util::printable(host, 200).c_str(), creds.error().message().c_str());
  });
  return {};
}

void AuthProvider::register_on(grpc::ServerBuilder& builder) {
  builder.RegisterService(service_.get());
}

std::vector<std::string> AuthProvider::methods() const { return {kMethod}; }

}  // namespace envd::buildkit
