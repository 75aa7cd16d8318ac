// Sizes as users type them on the command line: "10GB", "512MiB", "2g", or a
// number of bytes (decimal units kB/MB/GB/TB, binary k/m/g/t and KiB/MiB/GiB/
// TiB, case-insensitive), for --keep-storage and --memory.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "envd/result.hpp"

namespace envd::cli {

// Bytes, or Errc::invalid_argument "invalid <flag> '<text>': expected a size
// such as 10GB, 512MiB or a number of bytes" (or "...: larger than the 8 EiB
// a size can be").
Result<std::int64_t> parse_size_flag(const std::string& text, const std::string& flag);

// parse_size_flag as the command line is read: a value that is not a size is
// a usage error (exit 2): "--keep-storage: 'abc' is not a size (e.g. ...)".
CLI::Validator size_value();

}  // namespace envd::cli
