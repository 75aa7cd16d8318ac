// Build progress: the daemon's status stream goes to a ProgressSink. The CLI
// renders it live on a terminal or as plain timestamped lines (progress_ui.hpp).
#pragma once

namespace moby::buildkit::v1 {
class StatusResponse;
}

namespace envd::buildkit {

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // One incremental update from the Status stream. Called from one thread at a
  // time, in order.
  virtual void update(const moby::buildkit::v1::StatusResponse& status) = 0;
  // The stream ended (the build finished or failed).
  virtual void done() = 0;
  // Called before done() when the build ended because it was cancelled: the
  // daemon's own word for the steps it stopped never arrives then.
  virtual void cancelled() {}
};

}  // namespace envd::buildkit
