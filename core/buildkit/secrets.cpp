#include "buildkit/secrets.hpp"

#include <utility>

#include "github.com/moby/buildkit/session/secrets/secrets.grpc.pb.h"
#include "util/text.hpp"

namespace envd::buildkit {

namespace {

constexpr const char* kMethod = "/moby.buildkit.secrets.v1.Secrets/GetSecret";

}  // namespace

class SecretsProvider::Service final : public moby::buildkit::secrets::v1::Secrets::Service {
 public:
  explicit Service(const SecretsProvider& owner) : owner_(owner) {}

  grpc::Status GetSecret(grpc::ServerContext* /*context*/,
                         const moby::buildkit::secrets::v1::GetSecretRequest* request,
                         moby::buildkit::secrets::v1::GetSecretResponse* response) override {
    const std::string* value = owner_.find(request->id());
    if (value == nullptr) {
      // The daemon keys on the code, not the text: NOT_FOUND is "no such secret".
      std::string id = util::printable(request->id(), 200);
      return {grpc::StatusCode::NOT_FOUND,
              "secret '" + id + "' not found: pass it with envd build --secret id=" + id};
    }
    response->set_data(*value);
    return grpc::Status::OK;
  }

 private:
  const SecretsProvider& owner_;
};

SecretsProvider::SecretsProvider(SecretStore secrets)
    : secrets_(std::move(secrets)), service_(std::make_unique<Service>(*this)) {}

SecretsProvider::~SecretsProvider() = default;

const std::string* SecretsProvider::find(std::string_view id) const {
  auto it = secrets_.find(id);
  return it == secrets_.end() ? nullptr : &it->second;
}

void SecretsProvider::register_on(grpc::ServerBuilder& builder) {
  builder.RegisterService(service_.get());
}

std::vector<std::string> SecretsProvider::methods() const { return {kMethod}; }

}  // namespace envd::buildkit
