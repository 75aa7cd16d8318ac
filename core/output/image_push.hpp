// Pushing an image from the Docker Engine's store to its registry, as
// `envd build --output type=image,name=REF,push=true` does on the Engine's own
// builder (moby-worker): BuildKit v0.8 inside dockerd cannot push, so the
// build exports with `moby` and envd then asks the Engine to push each name
// (POST /images/{repository}/push?tag={tag}), with the user's registry
// credentials in X-Registry-Auth.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "buildkit/auth.hpp"
#include "envd/docker_engine.hpp"
#include "envd/result.hpp"
#include "output/progress_ui.hpp"

namespace envd::output {

// An image reference split the way the push endpoint wants it.
struct PushReference {
  std::string registry;    // "127.0.0.1:5000", "ghcr.io"; "docker.io" when the name has none
  std::string repository;  // the name without its tag: "127.0.0.1:5000/team/app"
  std::string tag;         // "v1"; "latest" when the reference has no tag
};

// Splits `reference` ([registry[:port]/]path[:tag]). A ':' after the last '/'
// starts the tag; one before it is a registry port. The first component is a
// registry when it contains '.' or ':' or is "localhost" (Docker's rule).
// Errors (Errc::invalid_argument) name the reference: an invalid one, or one
// with a digest ("cannot push 'x@sha256:...': a digest names content, push a
// tag").
Result<PushReference> parse_push_reference(std::string_view reference);

// Renders the Engine's push stream (JSON lines with status, progressDetail,
// progress, id, aux, error/errorDetail) on `out`: in plain and tty mode one
// line per change of a layer's status ("<id>: Pushed") and every message
// without an id; nothing in quiet mode. A line with "error" or errorDetail
// is a failure carrying the Engine's message.
class PushProgress {
 public:
  PushProgress(ProgressMode mode, std::FILE* out);

  // Handles one line of the stream; an error line returns its message
  // (Errc::internal), a line that is not JSON is ignored.
  Status line(std::string_view json_line);

  // The manifest digest the Engine reported at the end ({"aux": {"Tag",
  // "Digest", "Size"}}), "" until then or if it did not.
  const std::string& digest() const { return digest_; }

 private:
  ProgressMode mode_;
  std::FILE* out_;
  std::string digest_;
  std::map<std::string, std::string> layer_status_;  // id -> last status shown
};

struct PushOptions {
  buildkit::AuthOptions auth;  // where credentials are looked up
  ProgressMode mode = ProgressMode::plain;
  std::FILE* out = stderr;
  // The whole push must end by then (layers may be large: the caller picks).
  std::chrono::milliseconds timeout{std::chrono::hours(1)};
  // Polled as the stream arrives; returning true stops the push (Errc::cancelled).
  std::function<bool()> cancelled;
};

// Pushes `reference` from `engine`'s image store; the manifest digest the
// registry now has for it ("sha256:...", "" if the Engine did not say, as
// `docker push` prints it). Errors are one line:
// "cannot push <reference> to <registry>: <reason>" (the Engine's message,
// e.g. a refused connection or "An image does not exist locally ..."), or the
// credential lookup's error.
Result<std::string> push_image(sdk::DockerEngine& engine, std::string_view reference,
                               const PushOptions& options);

}  // namespace envd::output
