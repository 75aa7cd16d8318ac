// `envd build -f - PATH` and `envd build -`: the Dockerfile read from standard
// input, as docker build reads it. BuildKit's frontend asks the session for
// the Dockerfile by directory, so the text is written to a private directory
// of its own (mode 0700, under TMPDIR or /tmp) that the session serves as the
// Dockerfile's, and that goes when the build ends. `-` builds with no context:
// an empty directory beside it is served as the context.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "envd/result.hpp"

namespace envd::cli {

// The Dockerfile on `fd`, read to its end. `source` names it in messages
// ("-f -"). Refused: a terminal (nothing was piped in), an input closed when
// envd started, an empty one, one over 32 MiB, and an archive (docker build
// - takes a tarred context; envd takes a directory).
Result<std::string> read_stdin_dockerfile(int fd, std::string_view source);

class StdinDockerfile {
 public:
  // Reads standard input (read_stdin_dockerfile) and writes it out.
  static Result<StdinDockerfile> read(std::string_view source);

  StdinDockerfile(StdinDockerfile&& other) noexcept : dir_(std::move(other.dir_)) {
    other.dir_.clear();
  }
  StdinDockerfile& operator=(StdinDockerfile&&) = delete;
  StdinDockerfile(const StdinDockerfile&) = delete;
  StdinDockerfile& operator=(const StdinDockerfile&) = delete;
  ~StdinDockerfile();

  // <dir>/dockerfile/Dockerfile
  std::filesystem::path dockerfile() const { return dir_ / "dockerfile" / "Dockerfile"; }
  // <dir>/context, an empty directory: the context of `envd build -`.
  std::filesystem::path empty_context() const { return dir_ / "context"; }

 private:
  explicit StdinDockerfile(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace envd::cli
