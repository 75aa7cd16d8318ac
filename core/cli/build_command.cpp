// `envd build`'s flags, shared with `envd up`. The build itself runs in
// envd-client (build_run.cpp), which envd hands a build over to.
#include "cli/build_command.hpp"
#include "cli/choice_flag.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "cli/client/program.hpp"
#include "cli/commands.hpp"
#include "cli/duration_flag.hpp"
#include "util/text.hpp"

namespace envd::cli {

void add_build_flags(CLI::App* cmd, BuildRequest& request) {
  BuildRequest* req = &request;
  cmd->add_option("-f,--file", req->file, "Dockerfile (default: PATH/Dockerfile)");
  cmd->add_option("-t,--tag", req->tags,
                  "Image name and tag, repeatable (default: <basename of PATH>:dev)")
      ->allow_extra_args(false);
  // One value per occurrence: a vector option would otherwise swallow PATH.
  cmd->add_option(
         "--build-arg", req->build_args,
         "Build-time variable KEY=VALUE, or KEY for its value in the environment (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--target", req->target, "Build stage to stop at");
  cmd->add_option("--platform", req->platform, "Target platform, e.g. linux/amd64");
  cmd->add_flag("--no-cache", req->no_cache, "Do not use the build cache");
  cmd->add_option("--network", req->network, "Network for RUN steps: default, none or host")
      ->capture_default_str()
      ->check(one_of({"default", "none", "host"}));
  cmd->add_option("-o,--output", req->output,
                  "Output as one CSV record: type=local,dest=DIR | type=tar,dest=FILE | "
                  "type=image,name=REF,push=true | ...; a DIR alone is type=local, '-' a tar "
                  "on standard output");
  cmd->add_option("--progress", req->progress, "Progress display: auto, tty, plain or quiet")
      ->capture_default_str()
      ->check(one_of({"auto", "tty", "plain", "quiet"}));
  cmd->add_option("--connect-timeout", req->connect_timeout,
                  "How long to wait for the builder (default: BUILDKIT_CONNECTING_TIMEOUT or 10s)")
      ->check(positive_duration());
  cmd->add_flag("-q,--quiet", req->quiet,
                "Print only the image ID on stdout (no progress, no messages)");

  // Grouped as buildx groups them; one value per occurrence, as --build-arg.
  const std::string cache = "Cache";
  cmd->add_option("--cache-to,--export-cache", req->cache_to,
                  "Export build cache: type=registry,ref=REF[,mode=max] | "
                  "type=local,dest=DIR | type=inline (repeatable)")
      ->allow_extra_args(false)
      ->group(cache);
  cmd->add_option("--cache-from,--import-cache", req->cache_from,
                  "Import build cache: type=registry,ref=REF | type=local,src=DIR | REF "
                  "(repeatable)")
      ->allow_extra_args(false)
      ->group(cache);

  const std::string metadata = "Metadata";
  cmd->add_option("--label", req->labels,
                  "Image label KEY=VALUE, or KEY for an empty value (repeatable)")
      ->allow_extra_args(false)
      ->group(metadata);
  cmd->add_option("--iidfile", req->iidfile, "Write the image ID to FILE")->group(metadata);
  cmd->add_option("--metadata-file", req->metadata_file,
                  "Write the build result's metadata (buildx's JSON) to FILE")
      ->group(metadata);

  const std::string inputs = "Inputs";
  cmd->add_flag("--pull", req->pull, "Always look up base images in their registry")->group(inputs);
  cmd->add_option("--add-host", req->add_hosts,
                  "Host-to-IP mapping HOST:IP for RUN steps "
                  "(repeatable)")
      ->allow_extra_args(false)
      ->group(inputs);
  cmd->add_option("--secret", req->secrets,
                  "Secret for RUN --mount=type=secret: id=ID[,src=FILE|,env=VAR] (repeatable)")
      ->allow_extra_args(false)
      ->group(inputs);
  cmd->add_option("--ssh", req->ssh,
                  "ssh-agent for RUN --mount=type=ssh: default|ID[=SOCKET] (repeatable)")
      ->allow_extra_args(false)
      ->group(inputs);
  cmd->add_option("--build-context", req->build_contexts,
                  "Named context NAME=DIR or NAME=docker-image://REF, for FROM NAME and "
                  "COPY --from=NAME (repeatable)")
      ->allow_extra_args(false)
      ->group(inputs);
}

void add_build_path(CLI::App* cmd, std::string& path) {
  static const CLI::Validator non_empty(
      [](const std::string& value) {
        return value.empty() ? std::string("the build context is empty (leave PATH out for .)")
                             : std::string();
      },
      "", "non-empty");
  cmd->add_option("path", path, "Build context directory")->capture_default_str()->check(non_empty);
}

void add_build_commands(CLI::App& app, Invocation& invocation, Action& action) {
  {
    auto req = std::make_shared<BuildRequest>();
    CLI::App* cmd =
        app.add_subcommand("build", "Build an image from a Dockerfile with the context's builder");
    add_build_path(cmd, req->path);
    add_build_flags(cmd, *req);
    cmd->callback([&invocation, &action, req] {
      if (std::string mistake = stdin_build_mistake(*req); !mistake.empty()) {
        throw CLI::ValidationError(mistake);
      }
      req->ends_the_process = true;
      action = [&invocation, req] {
        return run_in_client(
            [&](const ClientApi& client) { return client.build(invocation, *req); });
      };
    });
  }
}

std::string stdin_build_mistake(const BuildRequest& request) {
  if (request.path != "-") return {};
  if (!request.file.empty()) {
    return "-f '" + util::printable(request.file, 80) +
           "' is not taken with '-': standard input is the Dockerfile";
  }
  if (request.tags.empty()) {
    return "a build from standard input ('-') has no directory to name the image after: give "
           "-t NAME[:TAG]";
  }
  return {};
}

Result<std::filesystem::path> build_context_dir(const std::string& path) {
  namespace fs = std::filesystem;
  const std::string quoted = "build context '" + path + "'";
  std::error_code ec;
  fs::path dir = fs::absolute(path, ec);
  if (ec) return Error(Errc::invalid_argument, "cannot read " + quoted + ": " + ec.message());
  auto status = fs::status(dir, ec);
  if (status.type() == fs::file_type::not_found) {
    // What docker build also takes, envd does not: said as such, not as a
    // missing directory named "-" or "https:".
    if (path == "-") {
      return Error(Errc::unsupported,
                   "a build from standard input ('-') is envd build's only: give a directory");
    }
    if (path.find("://") != std::string::npos || path.rfind("git@", 0) == 0) {
      return Error(Errc::unsupported, "a remote " + quoted +
                                          " is not supported: clone or download it, and give "
                                          "its directory");
    }
    return Error(Errc::not_found, quoted + " does not exist");
  }
  if (ec) return Error(Errc::permission, "cannot read " + quoted + ": " + ec.message());
  if (!fs::is_directory(status))
    return Error(Errc::invalid_argument, quoted + " is not a directory");
  // The session opens it when the daemon asks, mid-build: a directory envd
  // cannot list or enter is said now.
  if (::access(dir.c_str(), R_OK | X_OK) != 0) {
    return Error(Errc::permission, "cannot read " + quoted + ": " + std::strerror(errno));
  }
  return dir;
}

}  // namespace envd::cli
