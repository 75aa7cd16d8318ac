// The name `envd up` gives an environment when no --name is given.
#pragma once

#include <string>
#include <string_view>

namespace envd::cli {

// A directory's basename as upstream envd names an environment after it:
// lower-cased, kept to Docker's name characters ([a-z0-9_.-], the others
// dropped), leading non-alphanumerics dropped, at most 30 characters. Docker
// wants two characters at least: a shorter result gets the prefix "envd-", as
// `envd run` names one after a short image ("a" gives "envd-a"), and nothing
// left at all gives "envd-env".
std::string environment_name_from(std::string_view basename);

}  // namespace envd::cli
