#include "context/resolve.hpp"

#include <cstdlib>
#include <string>

#include "util/text.hpp"

namespace envd::context {

const char* describe(ContextSource source) {
  switch (source) {
    case ContextSource::flag:
      return "--context";
    case ContextSource::environment:
      return "ENVD_CONTEXT";
    case ContextSource::store:
      return "the store's current context";
    case ContextSource::fallback:
      return "the default";
  }
  return "?";
}

ContextChoice choose_context(const std::string& stored_current,
                             const std::optional<std::string>& flag) {
  if (flag) return {*flag, ContextSource::flag};
  if (const char* env = std::getenv("ENVD_CONTEXT"); env != nullptr && env[0] != '\0') {
    return {env, ContextSource::environment};
  }
  if (!stored_current.empty()) return {stored_current, ContextSource::store};
  return {"default", ContextSource::fallback};
}

Result<ResolvedContext> resolve_context(const ContextList& list,
                                        const std::optional<std::string>& flag) {
  auto [name, source] = choose_context(list.current, flag);
  std::string shown = "'" + util::printable(name, 80) + "'";
  std::string file =
      list.file.empty() ? "the store" : "'" + util::printable(list.file.string()) + "'";
  if (!validate_name(name)) {
    std::string origin = source == ContextSource::store ? "the current context in " + file
                                                        : std::string("from ") + describe(source);
    return Error(Errc::invalid_argument,
                 "invalid context name " + shown + " (" + origin + "): " + std::string(kNameRule));
  }
  if (const Context* ctx = list.find(name)) return ResolvedContext{*ctx, source};

  std::string message;
  switch (source) {
    case ContextSource::flag:
      message = "context " + shown +
                " (from --context) does not exist; 'envd context ls' lists "
                "the contexts";
      break;
    case ContextSource::environment:
      message = "context " + shown +
                " (from ENVD_CONTEXT) does not exist; unset ENVD_CONTEXT or "
                "set it to one of 'envd context ls'";
      break;
    case ContextSource::store:
      message = "current context " + shown + " in " + file +
                " does not exist; run 'envd context use NAME'";
      break;
    case ContextSource::fallback:
      message =
          "context 'default' does not exist and no current context is set; run 'envd "
          "context use NAME'";
      break;
  }
  return Error(Errc::not_found, message);
}

}  // namespace envd::context
