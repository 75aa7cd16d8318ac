// libenvd-client's one entry (api.hpp). Built with hidden visibility: this is
// the only symbol the library exports.
#include "cli/client/api.hpp"
#include "cli/client/commands.hpp"
#include "envd/internal/host_binding.hpp"

namespace {

const envd::cli::ClientApi kApi = {
    envd::cli::kClientApiVersion,    sizeof(envd::cli::ClientApi),
    sizeof(envd::cli::Invocation),   ENVD_VERSION,
    &envd::sdk::internal::bind_host, &envd::cli::run_build,
    &envd::cli::run_builder_status,  &envd::cli::run_bootstrap,
    &envd::cli::run_builder_stop,    &envd::cli::run_builder_rm,
    &envd::cli::run_prune,           &envd::cli::run_login,
    &envd::cli::run_logout,          &envd::cli::run_context_export,
    &envd::cli::run_context_import,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const envd::cli::ClientApi* envd_client_api() {
  return &kApi;
}
