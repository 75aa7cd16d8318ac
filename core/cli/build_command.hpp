// `envd build`'s request and flags, shared with `envd up`, which builds the
// same way before it runs the result on the context's runner. The build runs
// in envd-client: ClientApi::build (cli/client/api.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/invocation.hpp"
#include "envd/result.hpp"

namespace envd::cli {

struct BuildRequest {
  std::string path = ".";
  std::string file;
  // -t, repeatable as docker build's: each names the image; the first is the
  // one `envd up` runs.
  std::vector<std::string> tags;
  std::vector<std::string> build_args;
  std::string target;
  std::string platform;
  bool no_cache = false;
  std::string network = "default";
  std::string output;
  std::string progress = "auto";
  std::string connect_timeout;
  // Cache (buildx's --cache-to/--cache-from; upstream envd's
  // --export-cache/--import-cache land here too).
  std::vector<std::string> cache_to;
  std::vector<std::string> cache_from;
  // Metadata.
  std::vector<std::string> labels;
  std::vector<std::string> add_hosts;
  bool pull = false;
  std::vector<std::string> build_contexts;
  std::string iidfile;
  std::string metadata_file;
  bool quiet = false;
  // What --quiet prints on stdout: the image ID for `envd build`; `envd up`
  // prints the environment's name instead.
  bool quiet_prints_image_id = true;
  // Session services for RUN --mount=type=secret|ssh.
  std::vector<std::string> secrets;
  std::vector<std::string> ssh;
  // Set by `envd build`, whose process ends with the build: a successful
  // build leaves its connection and gRPC to the process's end
  // (Invocation::leave_to_exit). `envd up` goes on to run the image and
  // tears them down as usual.
  bool ends_the_process = false;
};

// Declares every `envd build` flag but PATH on `cmd`, writing into `request`
// (which must outlive parsing).
void add_build_flags(CLI::App* cmd, BuildRequest& request);

// Declares the PATH operand (the build context, default "."): an empty PATH,
// a script's unset variable, is refused as an empty flag value is (exit 2).
void add_build_path(CLI::App* cmd, std::string& path);

// What is wrong with a build from standard input (PATH `-`, no context):
// `-f` beside it, or no `-t` (there is no directory to name the image
// after); "" for any other request. A command line envd cannot use as
// given: the parse refuses it (exit 2), and run_build again.
std::string stdin_build_mistake(const BuildRequest& request);

// PATH made absolute, or why it cannot be built: "build context 'x' does
// not exist", "... is not a directory", "cannot read build context 'x': ...".
Result<std::filesystem::path> build_context_dir(const std::string& path);

}  // namespace envd::cli
