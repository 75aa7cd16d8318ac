// Loading a built image into the local Docker Engine when the builder is not
// the Engine's own BuildKit: the build exports with `docker` (a docker-archive
// tarball), the daemon streams the tarball back over the session's FileSend,
// and envd pipes it, while it arrives, into POST /images/load of the engine at
// DOCKER_HOST. Nothing is staged on disk.
//
//   auto loader = ImageLoader::start(std::move(engine), timeout);
//   auto target = FileSendTarget::stream(loader->sink());
//   ... solve ...
//   auto loaded = ok ? loader->finish() : (loader->abandon(), ...);
//
// Thread-safety: sink() is called from the FileSend handler thread while a
// loader thread uploads; finish()/abandon() belong to the thread that called
// start().
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "buildkit/filesend.hpp"
#include "envd/docker_engine.hpp"
#include "envd/result.hpp"

namespace envd::output {

class ImageLoader {
 public:
  // Checks that the engine answers (within `connect_timeout`), then starts
  // the upload in a thread; it reads the tarball from a pipe fed by sink().
  // Errors are the engine's connection errors.
  static Result<std::unique_ptr<ImageLoader>> start(sdk::DockerEngine engine,
                                                    std::chrono::milliseconds connect_timeout);

  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;
  ~ImageLoader();  // abandons an unfinished load

  // Writes each chunk into the pipe. Once the engine has refused the load,
  // every call fails with the engine's reason, so the export stops early.
  buildkit::FileSendTarget::Sink sink();

  // Ends the tarball, waits for the engine's answer and returns the names it
  // reports ("Loaded image: <name>", or "Loaded image ID: <id>"). Errors: the
  // engine's message, from its status or an error line of the stream.
  Result<std::vector<std::string>> finish();

  // Ends the tarball and waits for the upload without caring for its result
  // (the build failed; a truncated tarball is refused by the engine anyway).
  void abandon();

  // Why the engine has failed the load so far: ok while it goes on or once
  // it succeeded. Set before sink() fails, so a build whose export stopped
  // because of the load can tell that cause from its own.
  Status failure() const;

  const sdk::DockerEndpoint& endpoint() const { return engine_.endpoint(); }

 private:
  ImageLoader(sdk::DockerEngine engine, int read_fd, int write_fd);
  void run();
  void close_write_end();

  sdk::DockerEngine engine_;
  int read_fd_;
  int write_fd_;
  std::thread thread_;
  std::atomic<bool> failed_{false};
  mutable std::mutex mutex_;
  Status result_;
  std::vector<std::string> loaded_;
};

}  // namespace envd::output
