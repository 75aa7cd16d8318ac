// Image references ([registry[:port]/]path[:tag][@digest]) as Docker parses
// them, and the default tag of `envd build`.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "envd/result.hpp"

namespace envd::output {

// Validates a reference; the error names it and says what is wrong.
Status validate_image_reference(std::string_view reference);

// "<basename of the absolute context path, lower-cased>:dev". Fails, asking for
// -t, when the directory name cannot be an image name.
Result<std::string> default_image_tag(const std::filesystem::path& context_dir);

// The names `envd build` gives its image: the -t values in their order, each
// validated and a repeat dropped, or the default tag when there is none.
Result<std::vector<std::string>> image_names(const std::vector<std::string>& tags,
                                             const std::filesystem::path& context_dir);

// The names as an image exporter's `name` attribute takes several: "a:1,b:1".
std::string exporter_name(const std::vector<std::string>& names);

}  // namespace envd::output
