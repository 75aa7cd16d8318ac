// `envd build --output`: one CSV record, as envd and buildctl read it.
//
//   type=local,dest=DIR               a directory tree
//   type=tar|oci|docker[,dest=FILE]   a tarball; no dest or "-" means stdout
//   type=image,name=REG/x:y,push=true  and any other attribute, passed through
//   type=moby,name=x:y                 the Docker Engine's own image store
//
// Keys are lower-cased, values kept as given; double quotes wrap values that
// contain commas. Errors use the wording envd's users know.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "envd/result.hpp"

namespace envd::output {

struct OutputSpec {
  enum class Destination { none, directory, file, standard_output };

  std::string type;
  std::map<std::string, std::string> attrs;  // everything but type and dest
  Destination destination = Destination::none;
  std::string dest;  // the directory or file, when destination says so
};

// Parses one --output value. `stdout_is_terminal` decides whether a tarball
// may go to standard output.
Result<OutputSpec> parse_output(std::string_view value, bool stdout_is_terminal);

// BuildKit's reading of a boolean exporter attribute such as push: Go's
// strconv.ParseBool, with "" meaning true. parse_output() has refused any
// other value of the attributes it knows to be boolean.
bool attribute_is_true(const std::string& value);

}  // namespace envd::output
