// Text from outside envd (file contents, archive entry names, environment
// variables) made safe to put into a one-line message: the SDK's printable(),
// under the name the core has always used.
#pragma once

#include "envd/text.hpp"

namespace envd::util {

using sdk::printable;

}  // namespace envd::util
