#include "output/image_name.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <vector>

#include "envd/text.hpp"

namespace envd::output {
namespace {

// Docker's reference grammar (its reference package writes it as regular
// expressions), matched by hand: std::regex compiled these four at every
// start of envd, 5.5 million instructions, a fifth of `envd context ls`.
// image_name_test.cpp checks each matcher against the regular expression.
bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Runs of [a-z0-9] separated by one `sep`-accepted separator each; `sep`
// returns the separator's length at `i` (0: none there).
template <typename Separator>
bool separated_runs(std::string_view s, Separator sep) {
  size_t i = 0;
  while (true) {
    size_t start = i;
    while (i < s.size() && lower_alnum(s[i])) ++i;
    if (i == start) return false;  // a run is never empty
    if (i == s.size()) return true;
    size_t len = sep(s, i);
    if (len == 0) return false;
    i += len;
  }
}

// [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
bool path_component(std::string_view s) {
  return separated_runs(s, [](std::string_view t, size_t i) -> size_t {
    if (t[i] == '.') return 1;
    if (t[i] == '_') return i + 1 < t.size() && t[i + 1] == '_' ? 2 : 1;
    size_t j = i;
    while (j < t.size() && t[j] == '-') ++j;
    return j - i;
  });
}

// [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool domain_label(std::string_view s) {
  if (s.empty() || !alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return alnum(c) || c == '-'; });
}

bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// (?:label(?:\.label)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?
// The bracketed IPv6 host is the grammar of distribution/reference since
// v0.5 (the Engine 20.10's older copy refuses it; newer daemons take it).
bool domain(std::string_view s) {
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    std::string_view address = s.substr(1, close - 1);
    if (!std::all_of(address.begin(), address.end(), [](char c) { return hex(c) || c == ':'; })) {
      return false;
    }
    std::string_view rest = s.substr(close + 1);
    return rest.empty() || (rest.front() == ':' && digits(rest.substr(1)));
  }
  if (size_t colon = s.find(':'); colon != std::string_view::npos) {
    if (!digits(s.substr(colon + 1))) return false;
    s = s.substr(0, colon);
  }
  for (size_t start = 0;;) {
    size_t dot = s.find('.', start);
    if (!domain_label(s.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool tag(std::string_view s) {
  if (s.empty() || s.size() > 128 || !(alnum(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// [a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}
bool digest(std::string_view s) {
  size_t colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view algorithm = s.substr(0, colon);
  std::string_view encoded = s.substr(colon + 1);
  bool algorithm_ok = separated_runs(algorithm, [](std::string_view t, size_t i) -> size_t {
    return t[i] == '.' || t[i] == '+' || t[i] == '_' || t[i] == '-' ? 1 : 0;
  });
  return algorithm_ok && encoded.size() >= 32 && std::all_of(encoded.begin(), encoded.end(), hex);
}

// A reference may be anything the user typed: it is quoted in part, on one line.
constexpr size_t kQuoted = 200;
constexpr size_t kQuotedPart = 80;

Error bad(std::string_view reference, const std::string& why) {
  return Error(Errc::invalid_argument,
               "invalid image reference '" + sdk::printable(reference, kQuoted) + "': " + why);
}

}  // namespace

Status validate_image_reference(std::string_view reference) {
  if (reference.empty()) return bad(reference, "it is empty");
  std::string rest(reference);
  if (size_t at = rest.find('@'); at != std::string::npos) {
    if (!digest(std::string_view(rest).substr(at + 1))) {
      return bad(reference, "the digest must be <algorithm>:<hex>");
    }
    rest.resize(at);
  }
  // A ':' after the last '/' starts the tag; one before it belongs to a port.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    if (!tag(std::string_view(rest).substr(colon + 1))) {
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
    if (!domain(head)) {
      return bad(reference,
                 "'" + sdk::printable(head, kQuotedPart) + "' is not a valid registry host");
    }
    first = 1;
  }
  for (size_t i = first; i < parts.size(); ++i) {
    if (!path_component(parts[i])) {
      return bad(reference, "'" + sdk::printable(parts[i], kQuotedPart) +
                                "' must be lowercase letters and digits, separated by '.', '_', "
                                "'__' or '-'");
    }
  }
  return {};
}

Result<std::string> default_image_tag(const std::filesystem::path& context_dir) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::weakly_canonical(context_dir, ec);
  if (ec) absolute = std::filesystem::absolute(context_dir).lexically_normal();
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

Result<std::vector<std::string>> image_names(const std::vector<std::string>& tags,
                                             const std::filesystem::path& context_dir) {
  if (tags.empty()) {
    auto derived = default_image_tag(context_dir);
    if (!derived) return derived.error();
    return std::vector<std::string>{std::move(*derived)};
  }
  std::vector<std::string> names;
  for (const auto& tag : tags) {
    if (auto st = validate_image_reference(tag); !st) return st.error();
    // A digest is what the build makes, not a name it can give (docker
    // build refuses it too); the Engine would refuse it after the build.
    if (tag.find('@') != std::string::npos) {
      return bad(tag, "a build's tag cannot contain a digest");
    }
    if (std::find(names.begin(), names.end(), tag) == names.end()) names.push_back(tag);
  }
  return names;
}

std::string exporter_name(const std::vector<std::string>& names) {
  std::string joined;
  for (const auto& name : names) joined += (joined.empty() ? "" : ",") + name;
  return joined;
}

}  // namespace envd::output
