#include "envd/plugin.hpp"

// The defaults do not know the verb, so they fail with an empty message and
// the glue (plugin_glue.cpp), which knows it, writes the standard text:
// "cannot dial yet: this version does not provide it" for an empty
// Errc::unsupported, "unknown option '<key>' (it takes no options)" for an
// empty Errc::invalid_argument from normalize_options. The core puts
// "builder '<type>': " before either.

namespace envd::sdk {
namespace {

Error not_provided() { return Error(Errc::unsupported, ""); }

Result<Options> accept_no_options(const Options& options) {
  if (options.empty()) return options;
  return Error(Errc::invalid_argument, "");
}

}  // namespace

Result<Options> BuilderDriver::normalize_options(const Options& options) const {
  return accept_no_options(options);
}
Result<Transport> BuilderDriver::dial(const Request& /*request*/) { return not_provided(); }
Result<std::string> BuilderDriver::status(const Request& /*request*/) { return not_provided(); }
Result<std::string> BuilderDriver::bootstrap(const Request& /*request*/) { return not_provided(); }
Status BuilderDriver::stop(const Request& /*request*/) { return not_provided(); }
Status BuilderDriver::remove(const Request& /*request*/) { return not_provided(); }
Result<int> BuilderDriver::dial_session(const Request& /*request*/,
                                        const SessionRequest& /*session*/) {
  return not_provided();
}

Result<Options> RunnerDriver::normalize_options(const Options& options) const {
  return accept_no_options(options);
}
Result<std::string> RunnerDriver::create(const Request& /*request*/) { return not_provided(); }
Result<std::string> RunnerDriver::list(const Request& /*request*/) { return not_provided(); }
Result<std::string> RunnerDriver::inspect(const Request& /*request*/) { return not_provided(); }
Status RunnerDriver::remove(const Request& /*request*/) { return not_provided(); }
Status RunnerDriver::check_create(const Request& /*request*/) { return {}; }
Status RunnerDriver::logs(const Request& /*request*/, const Stdio& /*stdio*/) {
  return not_provided();
}
Result<int> RunnerDriver::attach(const Request& /*request*/, const Stdio& /*stdio*/) {
  return not_provided();
}

}  // namespace envd::sdk
