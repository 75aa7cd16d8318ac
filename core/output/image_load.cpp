#include "output/image_load.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "util/atomic_file.hpp"

namespace envd::output {
namespace {

namespace json = boost::json;

// A larger pipe lets the daemon's stream and the engine's reader run with
// fewer context switches; the default (64 KiB) works too.
constexpr int kPipeSize = 1 << 20;

// The load may take as long as the build that feeds it.
constexpr auto kLoadDeadline = std::chrono::hours(24);

std::string string_member(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

}  // namespace

Result<std::unique_ptr<ImageLoader>> ImageLoader::start(sdk::DockerEngine engine,
                                                        std::chrono::milliseconds connect_timeout) {
  if (auto version = engine.api_version(sdk::deadline_after(connect_timeout)); !version) {
    return version.error();
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Error(Errc::internal, std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  (void)::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);
  std::unique_ptr<ImageLoader> loader(new ImageLoader(std::move(engine), fds[0], fds[1]));
  loader->thread_ = std::thread([raw = loader.get()] { raw->run(); });
  return loader;
}

ImageLoader::ImageLoader(sdk::DockerEngine engine, int read_fd, int write_fd)
    : engine_(std::move(engine)), read_fd_(read_fd), write_fd_(write_fd) {}

ImageLoader::~ImageLoader() { abandon(); }

void ImageLoader::run() {
  std::vector<std::string> loaded;
  Status stream_error;
  auto answer = engine_.upload(
      "POST", "/images/load", "application/x-tar", sdk::body_from_fd(read_fd_),
      sdk::StreamMode::lines,
      [&](std::string_view line) {
        boost::system::error_code ec;
        auto value = json::parse(line, ec);
        if (ec || !value.is_object()) return true;
        const auto& object = value.get_object();
        if (object.contains("error") || object.contains("errorDetail")) {
          std::string message;
          if (const auto* d = object.if_contains("errorDetail"); d && d->is_object()) {
            message = string_member(d->get_object(), "message");
          }
          if (message.empty()) message = string_member(object, "error");
          stream_error = Error(Errc::internal, message);
          return true;
        }
        std::string text = string_member(object, "stream");
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
        for (std::string_view prefix : {"Loaded image: ", "Loaded image ID: "}) {
          if (text.rfind(prefix, 0) == 0) loaded.push_back(text.substr(prefix.size()));
        }
        return true;
      },
      sdk::deadline_after(kLoadDeadline));
  Status result;
  if (!answer) {
    result = answer.error();
  } else if (!stream_error) {
    result = stream_error.error();
  }
  {
    std::lock_guard lock(mutex_);
    result_ = result;
    loaded_ = std::move(loaded);
  }
  if (!result) failed_ = true;
  // Keep reading until the writer closes its end, so the exporter never
  // blocks on a full pipe (or dies of SIGPIPE) after the engine gave up.
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(read_fd_, buffer, sizeof buffer);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  ::close(read_fd_);
  read_fd_ = -1;
}

Status ImageLoader::failure() const {
  std::lock_guard lock(mutex_);
  return result_;
}

buildkit::FileSendTarget::Sink ImageLoader::sink() {
  auto write =
      buildkit::FileSendTarget::fd_sink(write_fd_, "the image tarball to the Docker Engine");
  return [this, write = std::move(write)](std::string_view chunk) -> Status {
    if (failed_) {
      return failure().error().wrap("cannot load the image");
    }
    return write(chunk);
  };
}

void ImageLoader::close_write_end() {
  if (write_fd_ >= 0) {
    ::close(write_fd_);
    write_fd_ = -1;
  }
}

Result<std::vector<std::string>> ImageLoader::finish() {
  close_write_end();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  if (!result_) return result_.error();
  return loaded_;
}

void ImageLoader::abandon() {
  close_write_end();
  if (thread_.joinable()) thread_.join();
}

}  // namespace envd::output
