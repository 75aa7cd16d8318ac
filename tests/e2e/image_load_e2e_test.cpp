// The load path of `envd build` against the real Docker Engine: a builder
// other than the Engine's own BuildKit exports with `docker`, streams the
// tarball over the session's FileSend, and envd pipes it into POST
// /images/load. The embedded BuildKit here has no `docker` exporter, so this
// test plays the daemon's side of FileSend/DiffCopy with a real docker-archive
// of the base image (GET /images/{name}/get) and drives the same
// FileSendTarget stream sink -> pipe -> loader code the build uses.
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "buildkit/attachables_test_support.hpp"
#include "buildkit/filesend.hpp"
#include "envd/docker_engine.hpp"
#include "github.com/moby/buildkit/session/filesync/filesync.grpc.pb.h"
#include "output/image_load.hpp"
#include "services/test_services.hpp"
#include "util/test_support.hpp"

namespace envd::output {
namespace {

constexpr const char* kBase = "envd-test/busybox:latest";
constexpr auto kTimeout = std::chrono::seconds(60);

// Sends `data` to the FileSend service as the daemon's exporter does: one
// DiffCopy call of BytesMessages, then a half-close.
grpc::Status send_as_daemon(const std::shared_ptr<grpc::Channel>& channel, const std::string& data,
                            std::size_t chunk_size) {
  grpc::internal::RpcMethod method("/moby.filesync.v1.FileSend/DiffCopy",
                                   grpc::internal::RpcMethod::BIDI_STREAMING);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kTimeout);
  using Message = moby::filesync::v1::BytesMessage;
  std::unique_ptr<grpc::ClientReaderWriter<Message, Message>> stream(
      grpc::internal::ClientReaderWriterFactory<Message, Message>::Create(channel.get(), method,
                                                                          &context));
  for (std::size_t off = 0; off < data.size(); off += chunk_size) {
    Message message;
    message.set_data(data.substr(off, chunk_size));
    if (!stream->Write(message)) break;
  }
  stream->WritesDone();
  return stream->Finish();
}

class ImageLoadE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    services_ = test::TestServices::load();
    ASSERT_TRUE(services_.ok()) << services_.error;
    auto endpoint = sdk::parse_docker_host(services_.docker_host);
    ASSERT_TRUE(endpoint) << endpoint.error().message();
    endpoint_ = *endpoint;
  }

  sdk::DockerEngine engine() const { return sdk::DockerEngine(endpoint_); }

  int image_status(const std::string& name) {
    auto answer =
        engine().request("GET", "/images/" + name + "/json", "", sdk::deadline_after(kTimeout));
    EXPECT_TRUE(answer) << answer.error().message();
    return answer ? answer->status : 0;
  }

  test::TestServices services_;
  sdk::DockerEndpoint endpoint_;
  util::testing::TempDir sock_dir_;
};

TEST_F(ImageLoadE2e, ADockerArchiveStreamedOverFileSendLandsInTheEngine) {
  const std::string name = "envd-e2e/loaded:v1";
  auto deadline = sdk::deadline_after(kTimeout);
  auto e = engine();
  ASSERT_TRUE(e.call("POST", "/images/" + std::string(kBase) + "/tag?repo=envd-e2e/loaded&tag=v1",
                     "", deadline));
  std::string archive;
  auto got = e.stream(
      "GET", "/images/" + name + "/get", "", {}, sdk::StreamMode::chunks,
      [&](std::string_view chunk) {
        archive.append(chunk);
        return true;
      },
      deadline);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_GT(archive.size(), 100000u) << "a docker-archive of busybox";
  // Untag (the base image keeps the layers): only the load can bring it back.
  ASSERT_TRUE(e.call("DELETE", "/images/" + name, "", deadline));
  ASSERT_EQ(image_status(name), 404);

  auto loader = ImageLoader::start(engine(), std::chrono::seconds(10));
  ASSERT_TRUE(loader) << loader.error().message();
  auto target = buildkit::FileSendTarget::stream((*loader)->sink());
  {
    buildkit::testing::LoopbackServer daemon(sock_dir_.path(), {target.get()});
    ASSERT_TRUE(daemon.started());
    auto sent = send_as_daemon(daemon.channel(), archive, 32 * 1024);
    ASSERT_TRUE(sent.ok()) << sent.error_message();
  }
  auto loaded = (*loader)->finish();
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(*loaded, std::vector<std::string>{name});
  EXPECT_EQ(image_status(name), 200);
}

TEST_F(ImageLoadE2e, ATarballTheEngineRefusesFailsTheExportWithTheEnginesReason) {
  auto loader = ImageLoader::start(engine(), std::chrono::seconds(10));
  ASSERT_TRUE(loader) << loader.error().message();
  auto target = buildkit::FileSendTarget::stream((*loader)->sink());
  {
    buildkit::testing::LoopbackServer daemon(sock_dir_.path(), {target.get()});
    ASSERT_TRUE(daemon.started());
    // Not a tar archive: the engine answers with an error once the body ends.
    auto sent = send_as_daemon(daemon.channel(), std::string(4096, 'x'), 1024);
    EXPECT_TRUE(sent.ok()) << sent.error_message();
  }
  auto loaded = (*loader)->finish();
  ASSERT_FALSE(loaded);
  // dockerd answers 200 and reports the failure inside the stream.
  EXPECT_NE(loaded.error().message().find("archive/tar: invalid tar header"), std::string::npos)
      << loaded.error().message();
  EXPECT_EQ(loaded.error().message().find('\n'), std::string::npos) << loaded.error().message();
}

TEST_F(ImageLoadE2e, AnUnreachableEngineFailsBeforeTheBuild) {
  auto endpoint = sdk::parse_docker_host("unix://" + (sock_dir_.path() / "none.sock").string());
  ASSERT_TRUE(endpoint);
  auto loader = ImageLoader::start(sdk::DockerEngine(*endpoint), std::chrono::seconds(2));
  ASSERT_FALSE(loader);
  EXPECT_EQ(loader.error().code(), Errc::unavailable);
  EXPECT_EQ(loader.error().message().rfind("cannot connect to the Docker Engine at unix://", 0), 0u)
      << loader.error().message();
}

}  // namespace
}  // namespace envd::output
