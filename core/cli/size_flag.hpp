// Sizes as users type them on the command line: "10GB", "512MiB", "2g", or a
// number of bytes (decimal units kB/MB/GB/TB, binary k/m/g/t and KiB/MiB/GiB/
// TiB, case-insensitive), for --keep-storage and --memory.
#pragma once

#include <cstdint>
#include <string>

#include "envd/result.hpp"

namespace envd::cli {

// Bytes, or Errc::invalid_argument "invalid <flag> '<text>': expected a size
// such as 10GB, 512MiB or a number of bytes".
Result<std::int64_t> parse_size_flag(const std::string& text, const std::string& flag);

}  // namespace envd::cli
