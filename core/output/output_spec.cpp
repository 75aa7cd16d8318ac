#include "output/output_spec.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <vector>

#include "envd/csv.hpp"
#include "util/atomic_file.hpp"
#include "util/text.hpp"

namespace envd::output {
namespace {

// The messages quote what the user typed: printable() keeps it on one line.
Error invalid(const std::string& message) {
  return Error(Errc::invalid_argument, util::printable(message));
}

// The exporters' attributes BuildKit reads as booleans (Go's ParseBool): a
// typo there fails only at the end of a build, so it is caught here.
bool is_boolean_attr(const std::string& key) {
  static const std::vector<std::string> keys = {
      "push",  "push-by-digest", "insecure",          "registry.insecure", "unpack",
      "store", "oci-mediatypes", "force-compression", "buildinfo",         "name-canonical"};
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

bool is_go_bool(const std::string& value) {
  static const std::vector<std::string> forms = {"1", "t", "T", "TRUE",  "true",  "True",
                                                 "0", "f", "F", "FALSE", "false", "False"};
  return std::find(forms.begin(), forms.end(), value) != forms.end();
}

bool is_tarball(const std::string& type) {
  return type == "tar" || type == "oci" || type == "docker";
}

}  // namespace

bool attribute_is_true(const std::string& value) {
  return !(value == "false" || value == "0" || value == "f" || value == "F" || value == "FALSE" ||
           value == "False");
}

Result<OutputSpec> parse_output(std::string_view value, bool stdout_is_terminal) {
  // docker build's shorthand: a value with no '=' is a directory for the
  // local exporter, and '-' a tar on standard output.
  if (!value.empty() && value.find('=') == std::string_view::npos) {
    if (value == "-") return parse_output("type=tar", stdout_is_terminal);
    OutputSpec spec;
    spec.type = "local";
    spec.destination = OutputSpec::Destination::directory;
    spec.dest = std::string(value);
    return spec;
  }
  auto fields = sdk::split_csv_record(value, "--output");
  if (!fields) return fields.error();
  OutputSpec spec;
  std::optional<std::string> dest;
  std::vector<std::string> seen;
  for (const auto& field : *fields) {
    size_t eq = field.find('=');
    if (eq == std::string::npos) return invalid("invalid value " + field);
    std::string key = field.substr(0, eq);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string val = field.substr(eq + 1);
    // Which of two would count is a guess; the user says which.
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      return invalid("key '" + key + "' is given twice");
    }
    seen.push_back(key);
    // An empty value is BuildKit's "true" for these ("push=" pushes).
    if (is_boolean_attr(key) && !val.empty() && !is_go_bool(val)) {
      std::string message = key;
      message.append("=").append(val).append(" is not a boolean (true or false)");
      return invalid(message);
    }
    if (key == "type") {
      spec.type = val;
    } else if (key == "dest") {
      dest = val;
    } else if (key == "output") {
      std::string message = "output=";
      message.append(val).append(" not supported for --output, you meant dest=").append(val);
      return invalid(message + "?");
    } else {
      spec.attrs[key] = val;
    }
  }
  if (spec.type.empty()) return invalid("--output requires type=<type>");
  // buildx's shorthand, which no daemon knows as an exporter.
  if (spec.type == "registry") {
    if (auto push = spec.attrs.find("push");
        push != spec.attrs.end() && !push->second.empty() && !attribute_is_true(push->second)) {
      return invalid("type=registry pushes: push=" + push->second +
                     " contradicts it (use type=image to keep the image on the builder)");
    }
    spec.type = "image";
    spec.attrs["push"] = "true";
  }

  if (spec.type == "local") {
    if (!dest || dest->empty()) return invalid("output directory is required for local exporter");
    spec.destination = OutputSpec::Destination::directory;
    spec.dest = *dest;
  } else if (is_tarball(spec.type)) {
    // /dev/stdout, /dev/fd/1: the user's standard output, which is not
    // descriptor 1 inside envd (util/data_out.hpp), so not a path to open.
    if (!dest || dest->empty() || *dest == "-" || util::names_standard_output(*dest)) {
      if (stdout_is_terminal) {
        return invalid("output file is required for " + spec.type +
                       " exporter. refusing to write to console");
      }
      spec.destination = OutputSpec::Destination::standard_output;
    } else {
      std::error_code ec;
      if (std::filesystem::is_directory(*dest, ec)) {
        return invalid("destination file is a directory");
      }
      spec.destination = OutputSpec::Destination::file;
      spec.dest = *dest;
    }
  } else if (dest) {
    return invalid("output " + *dest + " is not supported by " + spec.type + " exporter");
  }
  return spec;
}

}  // namespace envd::output
