#include "buildkit/filesend.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>
#include <mutex>
#include <string>
#include <vector>

#include "buildkit/attachables_test_support.hpp"
#include "buildkit/fsutil_stat.hpp"
#include "github.com/moby/buildkit/session/filesync/filesync.grpc.pb.h"
#include "util/test_support.hpp"

namespace envd::buildkit {
namespace {

namespace fs = std::filesystem;
namespace mode = fsutil_mode;
using fsutil::types::Packet;
using util::testing::mode_of;
using util::testing::read_text;
using util::testing::TempDir;

struct SendEntry {
  SendEntry(std::string p, std::uint32_t m, std::string c = "", std::string l = "",
            std::int64_t t = 1'700'000'000'000'000'000LL)
      : path(std::move(p)), mode(m), content(std::move(c)), linkname(std::move(l)), mtime(t) {}

  std::string path;
  std::uint32_t mode;
  std::string content;  // regular files
  std::string linkname;
  std::int64_t mtime;
};

struct SendResult {
  grpc::Status status;
  std::string err_packet;
  std::vector<std::uint32_t> requested;
};

// Plays the daemon as the fsutil sender of the local exporter.
SendResult send_tree(const std::shared_ptr<grpc::Channel>& channel,
                     const std::vector<SendEntry>& entries) {
  moby::filesync::v1::FileSend::Stub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub.DiffCopy(&context);
  for (const auto& entry : entries) {
    Packet packet;
    packet.set_type(Packet::PACKET_STAT);
    auto* stat = packet.mutable_stat();
    stat->set_path(entry.path);
    stat->set_mode(entry.mode);
    stat->set_size(static_cast<std::int64_t>(entry.content.size()));
    stat->set_modtime(entry.mtime);
    stat->set_linkname(entry.linkname);
    stream->Write(packet);
  }
  Packet end;
  end.set_type(Packet::PACKET_STAT);
  stream->Write(end);
  SendResult out;
  Packet packet;
  while (stream->Read(&packet)) {
    if (packet.type() == Packet::PACKET_REQ) {
      out.requested.push_back(packet.id());
      const std::string& content = entries.at(packet.id()).content;
      Packet data;
      data.set_type(Packet::PACKET_DATA);
      data.set_id(packet.id());
      for (std::size_t at = 0; at < content.size(); at += 7) {
        data.set_data(content.substr(at, 7));
        stream->Write(data);
      }
      data.clear_data();
      stream->Write(data);
    } else if (packet.type() == Packet::PACKET_FIN) {
      Packet fin;
      fin.set_type(Packet::PACKET_FIN);
      stream->Write(fin);
    } else if (packet.type() == Packet::PACKET_ERR) {
      out.err_packet = packet.data();
    }
  }
  stream->WritesDone();
  out.status = stream->Finish();
  return out;
}

grpc::Status send_bytes(const std::shared_ptr<grpc::Channel>& channel,
                        const std::vector<std::string>& chunks) {
  grpc::internal::RpcMethod method("/moby.filesync.v1.FileSend/DiffCopy",
                                   grpc::internal::RpcMethod::BIDI_STREAMING);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  using Message = moby::filesync::v1::BytesMessage;
  std::unique_ptr<grpc::ClientReaderWriter<Message, Message>> stream(
      grpc::internal::ClientReaderWriterFactory<Message, Message>::Create(channel.get(), method,
                                                                          &context));
  for (const auto& chunk : chunks) {
    Message message;
    message.set_data(chunk);
    stream->Write(message);
  }
  stream->WritesDone();
  return stream->Finish();
}

class FileSendTest : public ::testing::Test {
 protected:
  void start(std::unique_ptr<FileSendTarget> target) {
    target_ = std::move(target);
    server_ = std::make_unique<testing::LoopbackServer>(sock_dir_.path(),
                                                        std::vector<Attachable*>{target_.get()});
    ASSERT_TRUE(server_->started());
  }

  TempDir out_;
  TempDir sock_dir_;
  std::unique_ptr<FileSendTarget> target_;
  std::unique_ptr<testing::LoopbackServer> server_;
};

std::int64_t mtime_of(const fs::path& path) {
  struct stat st {};
  ::lstat(path.c_str(), &st);
  return st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
}

TEST_F(FileSendTest, AdvertisesDiffCopy) {
  auto target = FileSendTarget::directory(out_.path());
  EXPECT_EQ(target->methods(), std::vector<std::string>{"/moby.filesync.v1.FileSend/DiffCopy"});
}

TEST_F(FileSendTest, WritesTheTree) {
  auto dest = out_.path() / "out";
  start(FileSendTarget::directory(dest));
  std::vector<SendEntry> entries = {
      {"bin", mode::dir | 0750, "", "", 1'600'000'000'000'000'001LL},
      {"bin/tool", mode::setuid | 0755, "#!/bin/sh\necho tool\n"},
      {"data", mode::dir | 0755},
      {"data/empty", 0600, ""},
      {"data/hard", 0644, "", "data/text"},
      {"data/text", 0644, std::string(100, 't'), "", 1'234'567'890'123'456'789LL},
      {"link", mode::symlink | 0777, "", "data/text"},
      {"pipe", mode::named_pipe | 0640},
      {"ro", mode::dir | 0555},
      {"ro/file", 0444, "read only"},
  };
  // The hardlink must come after its target in fsutil order; fix the order.
  std::swap(entries[4], entries[5]);
  auto result = send_tree(server_->channel(), entries);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message() << result.err_packet;
  EXPECT_EQ(result.requested, (std::vector<std::uint32_t>{1, 3, 4, 9}));
  EXPECT_EQ(read_text(dest / "bin/tool"), "#!/bin/sh\necho tool\n");
  EXPECT_EQ(mode_of(dest / "bin/tool"), 04755u);
  EXPECT_EQ(mode_of(dest / "bin"), 0750u);
  EXPECT_EQ(mtime_of(dest / "bin"), 1'600'000'000'000'000'001LL);
  EXPECT_EQ(read_text(dest / "data/empty"), "");
  EXPECT_EQ(mode_of(dest / "data/empty"), 0600u);
  EXPECT_EQ(read_text(dest / "data/text"), std::string(100, 't'));
  EXPECT_EQ(mtime_of(dest / "data/text"), 1'234'567'890'123'456'789LL);
  EXPECT_EQ(util::testing::inode_of(dest / "data/hard"),
            util::testing::inode_of(dest / "data/text"));
  EXPECT_TRUE(fs::is_symlink(dest / "link"));
  EXPECT_EQ(fs::read_symlink(dest / "link"), "data/text");
  EXPECT_TRUE(fs::is_fifo(fs::symlink_status(dest / "pipe")));
  EXPECT_EQ(mode_of(dest / "pipe"), 0640u);
  EXPECT_EQ(mode_of(dest / "ro"), 0555u);
  EXPECT_EQ(read_text(dest / "ro/file"), "read only");
}

// Linux names are bytes, and fsutil's are Go strings: a name or a link
// target that is not UTF-8 arrives as it is (protobuf refused to parse it
// while the fields were declared `string`).
TEST_F(FileSendTest, NamesThatAreNotUtf8ArriveAsTheyAre) {
  auto dest = out_.path() / "out";
  start(FileSendTarget::directory(dest));
  const std::string bad = "bad\xff\xfe";
  std::vector<SendEntry> entries = {
      {bad, 0644, "bytes\n"},
      {"link", mode::symlink | 0777, "", "tar\xffget"},
  };
  auto result = send_tree(server_->channel(), entries);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message() << result.err_packet;
  EXPECT_EQ(read_text(dest / bad), "bytes\n");
  EXPECT_EQ(fs::read_symlink(dest / "link").string(), "tar\xffget");
}

TEST_F(FileSendTest, ReplacesEntriesWithoutFollowingLinks) {
  TempDir outside;
  util::testing::write_text(outside / "victim", "safe");
  fs::create_symlink(outside / "victim", out_.path() / "evil");
  fs::create_directories(out_.path() / "was-dir/sub");
  util::testing::write_text(out_.path() / "old", "old");
  start(FileSendTarget::directory(out_.path()));
  auto result = send_tree(server_->channel(),
                          {{"evil", 0644, "new"}, {"old", 0644, "fresh"}, {"was-dir", 0644, "f"}});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message() << result.err_packet;
  EXPECT_EQ(read_text(outside / "victim"), "safe");
  EXPECT_FALSE(fs::is_symlink(out_.path() / "evil"));
  EXPECT_EQ(read_text(out_.path() / "evil"), "new");
  EXPECT_EQ(read_text(out_.path() / "old"), "fresh");
  EXPECT_EQ(read_text(out_.path() / "was-dir"), "f");
}

TEST_F(FileSendTest, RejectsUnsafePaths) {
  start(FileSendTarget::directory(out_.path() / "out"));
  for (const char* path : {"../escape", "/abs", "a/../b", "./x", ""}) {
    SCOPED_TRACE(path);
    auto result = send_tree(server_->channel(), {{path, 0644, "x"}});
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(result.err_packet, "");
  }
  EXPECT_FALSE(fs::exists(out_.path() / "escape"));
}

TEST_F(FileSendTest, RejectsEntriesBelowSymlinks) {
  TempDir outside;
  start(FileSendTarget::directory(out_.path()));
  auto result = send_tree(
      server_->channel(),
      {{"link", mode::symlink | 0777, "", outside.path().string()}, {"link/x", 0644, "x"}});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(fs::exists(outside / "x"));
}

TEST_F(FileSendTest, RejectsHardlinkToUnknownPath) {
  start(FileSendTarget::directory(out_.path()));
  auto result = send_tree(server_->channel(), {{"h", 0644, "", "nowhere"}});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(result.err_packet.find("nowhere"), std::string::npos);
}

TEST_F(FileSendTest, StreamModePassesBytesThrough) {
  // The sink runs on gRPC's thread. The RPC's end orders it before the checks
  // below, but through gRPC's own (uninstrumented) locks: the mutex makes the
  // order visible to ThreadSanitizer.
  std::mutex mutex;
  std::string got;
  int calls = 0;
  start(FileSendTarget::stream([&](std::string_view chunk) -> Status {
    std::lock_guard lock(mutex);
    got.append(chunk);
    ++calls;
    return {};
  }));
  std::vector<std::string> chunks = {"ustar header", std::string(3 << 20, '\0'),
                                     std::string("\x01\x02\xff", 3), ""};
  std::string expected;
  for (const auto& c : chunks) expected += c;
  auto status = send_bytes(server_->channel(), chunks);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::lock_guard lock(mutex);
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
  EXPECT_EQ(calls, 4);
}

TEST_F(FileSendTest, FdSinkWritesAFile) {
  auto path = out_.path() / "image.tar";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  start(FileSendTarget::stream(FileSendTarget::fd_sink(fd, "'image.tar'")));
  auto status = send_bytes(server_->channel(), {"abc", "def"});
  ::close(fd);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(read_text(path), "abcdef");
}

TEST_F(FileSendTest, SinkErrorFailsTheExport) {
  start(FileSendTarget::stream([](std::string_view) -> Status {
    return Error(Errc::unavailable, "cannot write 'out.tar': no space left on device");
  }));
  auto status = send_bytes(server_->channel(), {"abc"});
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.error_message().find("no space left"), std::string::npos);
}

TEST(FileSendSink, FdSinkReportsErrors) {
  auto sink = FileSendTarget::fd_sink(-1, "'nowhere'");
  auto status = sink("x");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("cannot write 'nowhere'"), std::string::npos);
}

}  // namespace
}  // namespace envd::buildkit
