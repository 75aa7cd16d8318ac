#include "output/image_name.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

namespace envd::output {
namespace {

// Grammar of Docker's reference package, written as regular expressions.
const std::regex kPathComponent("[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*");
const std::regex kDomain(
    "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    "(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?");
const std::regex kTag("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
const std::regex kDigest("[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}");

Error bad(std::string_view reference, const std::string& why) {
  return Error(Errc::invalid_argument,
               "invalid image reference '" + std::string(reference) + "': " + why);
}

}  // namespace

Status validate_image_reference(std::string_view reference) {
  if (reference.empty()) return bad(reference, "it is empty");
  std::string rest(reference);
  if (size_t at = rest.find('@'); at != std::string::npos) {
    if (!std::regex_match(rest.substr(at + 1), kDigest)) {
      return bad(reference, "the digest must be <algorithm>:<hex>");
    }
    rest.resize(at);
  }
  // A ':' after the last '/' starts the tag; one before it belongs to a port.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    if (!std::regex_match(rest.substr(colon + 1), kTag)) {
      return bad(reference, "the tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    }
    rest.resize(colon);
  }
  if (rest.size() > 255) return bad(reference, "the name is longer than 255 characters");
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t end = rest.find('/', start);
    parts.push_back(rest.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  size_t first = 0;
  const std::string& head = parts.front();
  bool has_domain =
      parts.size() > 1 && (head.find_first_of(".:") != std::string::npos || head == "localhost" ||
                           std::any_of(head.begin(), head.end(), ::isupper));
  if (has_domain) {
    if (!std::regex_match(head, kDomain)) {
      return bad(reference, "'" + head + "' is not a valid registry host");
    }
    first = 1;
  }
  for (size_t i = first; i < parts.size(); ++i) {
    if (!std::regex_match(parts[i], kPathComponent)) {
      return bad(reference, "'" + parts[i] +
                                "' must be lowercase letters and digits, separated by '.', '_', "
                                "'__' or '-'");
    }
  }
  return {};
}

Result<std::string> default_image_tag(const std::filesystem::path& context_dir) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::weakly_canonical(context_dir, ec);
  if (ec) absolute = std::filesystem::absolute(context_dir);
  std::string name = absolute.filename().string();
  if (name.empty()) name = absolute.parent_path().filename().string();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string tag = name + ":dev";
  if (name.empty() || !validate_image_reference(tag)) {
    return Error(Errc::invalid_argument, "cannot derive an image name from the directory '" +
                                             absolute.string() + "'; pass -t NAME[:TAG]");
  }
  return tag;
}

}  // namespace envd::output
