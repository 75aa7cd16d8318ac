#include "output/image_push.hpp"

#include "envd/registry_auth.hpp"
#include "envd/text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "output/image_name.hpp"
#include "util/message_out.hpp"

namespace envd::output {
namespace {

namespace json = boost::json;

std::string string_member(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

// The Engine's message of an error line: errorDetail.message, else error.
std::string error_of(const json::object& object) {
  if (const auto* detail = object.if_contains("errorDetail"); detail && detail->is_object()) {
    if (auto message = string_member(detail->get_object(), "message"); !message.empty()) {
      return message;
    }
  }
  return string_member(object, "error");
}

bool has_error(const json::object& object) {
  return object.contains("error") || object.contains("errorDetail");
}

}  // namespace

Result<PushReference> parse_push_reference(std::string_view reference) {
  if (reference.find('@') != std::string_view::npos) {
    return Error(Errc::invalid_argument, "cannot push '" + sdk::printable(reference, 200) +
                                             "': a digest names content, not a place to push "
                                             "to; give a tag instead");
  }
  if (auto st = validate_image_reference(reference); !st) return st.error();
  std::string name(reference);
  PushReference out;
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    out.tag = name.substr(colon + 1);
    name.resize(colon);
  } else {
    out.tag = "latest";
  }
  out.repository = name;
  size_t first = name.find('/');
  std::string head = first == std::string::npos ? "" : name.substr(0, first);
  bool has_registry =
      !head.empty() && (head.find_first_of(".:") != std::string::npos || head == "localhost" ||
                        std::any_of(head.begin(), head.end(), ::isupper));
  out.registry = has_registry ? head : "docker.io";
  return out;
}

PushProgress::PushProgress(ProgressMode mode, std::FILE* out) : mode_(mode), out_(out) {}

Status PushProgress::line(std::string_view json_line) {
  boost::system::error_code ec;
  auto value = json::parse(json_line, ec);
  if (ec || !value.is_object()) return {};
  const auto& object = value.get_object();
  if (has_error(object)) {
    std::string message = error_of(object);
    return Error(Errc::internal, message.empty() ? "the Docker Engine reported an error" : message);
  }
  if (const auto* aux = object.if_contains("aux"); aux != nullptr && aux->is_object()) {
    std::string digest = string_member(aux->get_object(), "Digest");
    if (!digest.empty()) digest_ = sdk::printable(digest, 100);
  }
  if (mode_ == ProgressMode::quiet) return {};
  std::string status = string_member(object, "status");
  if (status.empty()) return {};  // aux (digest and size) and keep-alive lines
  std::string id = string_member(object, "id");
  if (id.empty()) {
    util::write_message(out_, fmt::format("{}\n", status));
  } else {
    // Progress lines repeat "Pushing" with growing byte counts: one line per
    // change of state is what a log can hold.
    auto& last = layer_status_[id];
    if (last == status) return {};
    last = status;
    util::write_message(out_, fmt::format("{}: {}\n", id, status));
  }
  std::fflush(out_);
  return {};
}

Result<std::string> push_image(sdk::DockerEngine& engine, std::string_view reference,
                               const PushOptions& options) {
  auto ref = parse_push_reference(reference);
  if (!ref) return ref.error();
  std::string failed = "cannot push " + std::string(reference) + " to " + ref->registry;
  auto auth = sdk::registry_auth_header_for(ref->registry, options.auth);
  if (!auth) return auth.error().wrap(failed);
  sdk::EngineHeaders headers{{"X-Registry-Auth", *auth}};
  PushProgress progress(options.mode, options.out);
  Status failure;
  auto pushed = engine.stream(
      "POST", "/images/" + ref->repository + "/push?tag=" + ref->tag, "", headers,
      sdk::StreamMode::lines,
      [&](std::string_view line) {
        if (options.cancelled && options.cancelled()) return false;
        failure = progress.line(line);
        return static_cast<bool>(failure);
      },
      sdk::deadline_after(options.timeout));
  if (!failure) return Error(Errc::internal, failed + ": " + failure.error().message());
  if (!pushed) {
    if (pushed.error().code() == Errc::cancelled) return Error(Errc::cancelled, "push cancelled");
    return pushed.error().wrap(failed);
  }
  return progress.digest();
}

}  // namespace envd::output
