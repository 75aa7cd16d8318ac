#include "buildkit/filesync.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "buildkit/attachables_test_support.hpp"
#include "buildkit/fsutil_stat.hpp"
#include "github.com/moby/buildkit/session/filesync/filesync.grpc.pb.h"
#include "util/test_support.hpp"

namespace envd::buildkit {
namespace {

namespace fs = std::filesystem;
using fsutil::types::Packet;
using util::testing::TempDir;
using util::testing::write_text;

std::uint64_t fnv(std::uint64_t hash, std::string_view data) {
  for (unsigned char c : data) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}
constexpr std::uint64_t kFnvStart = 14695981039346656037ull;

std::uint64_t hash_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::uint64_t hash = kFnvStart;
  std::string buffer(1 << 16, '\0');
  for (ssize_t n; (n = ::read(fd, buffer.data(), buffer.size())) > 0;) {
    hash = fnv(hash, std::string_view(buffer.data(), static_cast<std::size_t>(n)));
  }
  ::close(fd);
  return hash;
}

struct Entry {
  fsutil::types::Stat stat;
  bool requested = false;
  bool complete = false;
  std::uint64_t hash = kFnvStart;
  std::uint64_t bytes = 0;
  std::size_t data_packets = 0;  // non-empty DATA
  std::size_t largest_data = 0;
};

struct Received {
  std::vector<Entry> entries;
  grpc::Status status;
  std::string order_error;
  std::string err_packet;

  std::vector<std::string> paths() const {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.stat.path());
    return out;
  }
  const Entry* find(const std::string& path) const {
    for (const auto& e : entries) {
      if (e.stat.path() == path) return &e;
    }
    return nullptr;
  }
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

// Checks fsutil's receiver rules: parents opened before children, names in a
// directory strictly increasing.
class OrderChecker {
 public:
  std::string check(const fsutil::types::Stat& stat) {
    const std::string& path = stat.path();
    auto slash = path.rfind('/');
    std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    while (!stack_.empty() && stack_.back().first != parent) stack_.pop_back();
    if (stack_.empty()) return "changes out of order: parent of " + path;
    if (!(stack_.back().second < name) && !stack_.back().second.empty()) {
      return "changes out of order: " + path + " after " + stack_.back().second;
    }
    stack_.back().second = name;
    if (fsutil_mode::is_dir(stat.mode())) stack_.push_back({path, ""});
    return {};
  }

 private:
  std::vector<std::pair<std::string, std::string>> stack_{{"", ""}};
};

// Plays the daemon: the fsutil receiver on FileSync.DiffCopy, requesting every
// regular file as its STAT comes (`before_request` runs just before).
Received receive(const std::shared_ptr<grpc::Channel>& channel, const Metadata& metadata,
                 const std::function<void(Received&, grpc::ClientReaderWriter<Packet, Packet>&)>&
                     on_walk_done = nullptr,
                 const std::function<void(const fsutil::types::Stat&)>& before_request = nullptr) {
  moby::filesync::v1::FileSync::Stub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  for (const auto& [k, v] : metadata) context.AddMetadata(k, v);
  auto stream = stub.DiffCopy(&context);
  Received out;
  OrderChecker order;
  Packet packet;
  std::size_t pending = 0;
  bool walk_done = false;
  bool fin_sent = false;
  while (stream->Read(&packet)) {
    if (packet.type() == Packet::PACKET_STAT) {
      if (!packet.has_stat()) {
        walk_done = true;
        if (on_walk_done) {
          on_walk_done(out, *stream);
          break;
        }
      } else {
        auto id = static_cast<std::uint32_t>(out.entries.size());
        if (auto error = order.check(packet.stat()); !error.empty() && out.order_error.empty()) {
          out.order_error = error;
        }
        Entry entry;
        entry.stat = packet.stat();
        if (fsutil_mode::is_regular(entry.stat.mode()) && entry.stat.linkname().empty()) {
          entry.requested = true;
          ++pending;
          if (before_request) before_request(entry.stat);
          Packet request;
          request.set_type(Packet::PACKET_REQ);
          request.set_id(id);
          stream->Write(request);
        }
        out.entries.push_back(std::move(entry));
      }
    } else if (packet.type() == Packet::PACKET_DATA) {
      auto& entry = out.entries.at(packet.id());
      if (packet.data().empty()) {
        entry.complete = true;
        --pending;
      } else {
        entry.hash = fnv(entry.hash, packet.data());
        entry.bytes += packet.data().size();
        ++entry.data_packets;
        entry.largest_data = std::max(entry.largest_data, packet.data().size());
      }
    } else if (packet.type() == Packet::PACKET_FIN) {
      break;
    } else if (packet.type() == Packet::PACKET_ERR) {
      out.err_packet = packet.data();
      break;
    }
    if (walk_done && pending == 0 && !fin_sent) {
      Packet fin;
      fin.set_type(Packet::PACKET_FIN);
      stream->Write(fin);
      fin_sent = true;
    }
  }
  stream->WritesDone();
  out.status = stream->Finish();
  return out;
}

// Asserts that every received entry describes the source file it names.
void expect_matches_source(const Received& received, const fs::path& root) {
  std::map<std::pair<dev_t, ino_t>, std::string> first_path;
  for (const auto& entry : received.entries) {
    const auto& stat = entry.stat;
    SCOPED_TRACE(stat.path());
    struct stat st {};
    ASSERT_EQ(::lstat((root / stat.path()).c_str(), &st), 0);
    EXPECT_EQ(stat.mode(), fsutil_mode::from_posix(st.st_mode));
    EXPECT_EQ(stat.uid(), st.st_uid);
    EXPECT_EQ(stat.gid(), st.st_gid);
    EXPECT_EQ(stat.modtime(), st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec);
    if (S_ISLNK(st.st_mode)) {
      EXPECT_EQ(stat.linkname(), fs::read_symlink(root / stat.path()).string());
      EXPECT_EQ(stat.size(), st.st_size);
    } else if (S_ISREG(st.st_mode)) {
      auto [it, first] = first_path.try_emplace({st.st_dev, st.st_ino}, stat.path());
      if (first) {
        EXPECT_EQ(stat.linkname(), "");
        EXPECT_EQ(stat.size(), st.st_size);
        EXPECT_TRUE(entry.complete);
        EXPECT_EQ(entry.bytes, static_cast<std::uint64_t>(st.st_size));
        EXPECT_EQ(entry.hash, hash_file(root / stat.path()));
      } else {
        // The file's size, as fsutil's mkstat sends it (the daemon compares
        // it with its own copy's on a rebuild).
        EXPECT_EQ(stat.linkname(), it->second);
        EXPECT_EQ(stat.size(), st.st_size);
        EXPECT_FALSE(entry.requested);
      }
    } else if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(stat.size(), 0);
    }
  }
}

class FileSyncTest : public ::testing::Test {
 protected:
  void start(std::map<std::string, fs::path> dirs) {
    provider_ = std::make_unique<FileSyncProvider>(std::move(dirs));
    server_ = std::make_unique<testing::LoopbackServer>(sock_dir_.path(),
                                                        std::vector<Attachable*>{provider_.get()});
    ASSERT_TRUE(server_->started());
  }
  Received get(Metadata metadata) { return receive(server_->channel(), metadata); }

  TempDir src_;
  TempDir sock_dir_;
  std::unique_ptr<FileSyncProvider> provider_;
  std::unique_ptr<testing::LoopbackServer> server_;
};

TEST_F(FileSyncTest, AdvertisesDiffCopy) {
  FileSyncProvider provider({});
  EXPECT_EQ(provider.methods(), std::vector<std::string>{"/moby.filesync.v1.FileSync/DiffCopy"});
}

TEST_F(FileSyncTest, SendsWholeTreeInFsutilOrder) {
  const auto& root = src_.path();
  fs::create_directories(root / "a/sub");
  write_text(root / "a/x", "x content");
  write_text(root / "a/sub/deep", std::string(100000, 'd'));
  write_text(root / "a.b", "dot");
  write_text(root / "b", "");
  write_text(root / "exec.sh", "#!/bin/sh\n");
  ::chmod((root / "exec.sh").c_str(), 04755);
  fs::create_directories(root / "shared");
  ::chmod((root / "shared").c_str(), 01777);
  fs::create_symlink("a/x", root / "link");
  fs::create_symlink("/nonexistent/target", root / "dangling");
  fs::create_hard_link(root / "a/x", root / "z-hard");
  ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0640), 0);
  write_text(root / "UPPER", "upper sorts first");
  write_text(root / "\xc3\xa9t\xc3\xa9", "utf8");
  // A socket is skipped.
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", (root / "sock").c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  util::testing::set_mtime(root / "b", 1'600'000'000, 123456789);

  start({{"context", root}});
  auto received = get({{"dir-name", "context"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.order_error, "");
  EXPECT_EQ(received.paths(),
            (std::vector<std::string>{"UPPER", "a", "a/sub", "a/sub/deep", "a/x", "a.b", "b",
                                      "dangling", "exec.sh", "fifo", "link", "shared", "z-hard",
                                      "\xc3\xa9t\xc3\xa9"}));
  expect_matches_source(received, root);
  EXPECT_EQ(received.find("z-hard")->stat.linkname(), "a/x");
  EXPECT_EQ(received.find("b")->stat.modtime(), 1'600'000'000'123'456'789LL);
  EXPECT_EQ(received.find("exec.sh")->stat.mode(), fsutil_mode::setuid | 0755u);
  EXPECT_EQ(received.find("shared")->stat.mode(), fsutil_mode::dir | fsutil_mode::sticky | 0777u);
  EXPECT_EQ(received.find("fifo")->stat.mode(), fsutil_mode::named_pipe | 0640u);
  ::close(sock);
}

TEST_F(FileSyncTest, UnknownDirNameIsNotFound) {
  start({{"context", src_.path()}});
  auto received = get({{"dir-name", "nope"}});
  EXPECT_EQ(received.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(received.status.error_message().find("'nope'"), std::string::npos);
}

TEST_F(FileSyncTest, ExcludePatternsWithExceptions) {
  const auto& root = src_.path();
  fs::create_directories(root / ".git/objects");
  write_text(root / ".git/HEAD", "ref");
  write_text(root / ".gitignore", "x");
  write_text(root / "README.md", "readme");
  write_text(root / "CHANGES.md", "changes");
  write_text(root / "main.go", "package main");
  fs::create_directories(root / "dir/keep/inner");
  write_text(root / "dir/drop", "d");
  write_text(root / "dir/keep/inner/f", "f");
  fs::create_directories(root / "docs");
  write_text(root / "docs/guide.md", "g");
  start({{"context", root}});
  auto received = get({{"dir-name", "context"},
                       {"exclude-patterns", "*.md"},
                       {"exclude-patterns", "!README.md"},
                       {"exclude-patterns", ".git"},
                       {"exclude-patterns", "dir"},
                       {"exclude-patterns", "!dir/keep"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.order_error, "");
  EXPECT_EQ(received.paths(), (std::vector<std::string>{
                                  ".gitignore", "README.md", "dir", "dir/keep", "dir/keep/inner",
                                  "dir/keep/inner/f", "docs", "docs/guide.md", "main.go"}));
  expect_matches_source(received, root);
}

TEST_F(FileSyncTest, DoubleStarExcludeAndDirContents) {
  const auto& root = src_.path();
  fs::create_directories(root / "a/b");
  write_text(root / "a/b/x.go", "go");
  write_text(root / "a/b/x.txt", "txt");
  write_text(root / "y.go", "go");
  fs::create_directories(root / "build/out");
  write_text(root / "build/out/bin", "bin");
  start({{"context", root}});
  auto received = get(
      {{"dir-name", "context"}, {"exclude-patterns", "**/*.go"}, {"exclude-patterns", "build/**"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.paths(), (std::vector<std::string>{"a", "a/b", "a/b/x.txt", "build"}));
}

TEST_F(FileSyncTest, ReincludedFilesBringTheirExcludedParents) {
  const auto& root = src_.path();
  fs::create_directories(root / "pkg/sub");
  fs::create_directories(root / "empty");
  write_text(root / "pkg/sub/lib.go", "go");
  write_text(root / "pkg/sub/lib.c", "c");
  write_text(root / "main.go", "go");
  write_text(root / "Makefile", "m");
  start({{"context", root}});
  auto received =
      get({{"dir-name", "context"}, {"exclude-patterns", "**"}, {"exclude-patterns", "!**/*.go"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.order_error, "");
  EXPECT_EQ(received.paths(),
            (std::vector<std::string>{"main.go", "pkg", "pkg/sub", "pkg/sub/lib.go"}));
  expect_matches_source(received, root);
}

TEST_F(FileSyncTest, IncludePatternsSendParents) {
  const auto& root = src_.path();
  fs::create_directories(root / "src/pkg");
  write_text(root / "src/a.go", "a");
  write_text(root / "src/b.txt", "b");
  write_text(root / "src/pkg/c.go", "c");
  write_text(root / "top.go", "t");
  fs::create_directories(root / "vendor");
  write_text(root / "vendor/v.go", "v");
  start({{"context", root}});
  auto received = get({{"dir-name", "context"},
                       {"include-patterns", "src/*.go"},
                       {"include-patterns", "vendor"},
                       {"exclude-patterns", "vendor/v.go"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.order_error, "");
  EXPECT_EQ(received.paths(), (std::vector<std::string>{"src", "src/a.go", "vendor"}));
  expect_matches_source(received, root);
}

TEST_F(FileSyncTest, FollowPathsResolveSymlinks) {
  const auto& root = src_.path();
  fs::create_directories(root / "real");
  write_text(root / "real/Dockerfile", "FROM scratch\n");
  write_text(root / "other", "o");
  fs::create_symlink("real/Dockerfile", root / "Dockerfile");
  fs::create_symlink("real", root / "linkdir");
  start({{"dockerfile", root}});
  auto received = get({{"dir-name", "dockerfile"},
                       {"followpaths", "Dockerfile"},
                       {"followpaths", "Dockerfile.dockerignore"},
                       {"followpaths", "linkdir/Dockerfile"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.paths(),
            (std::vector<std::string>{"Dockerfile", "linkdir", "real", "real/Dockerfile"}));
  expect_matches_source(received, root);
}

// COPY's sources reach the session as followpaths, wildcards and all
// (`COPY *.txt /o/`): they are patterns, as fsutil takes them, and a symlink
// a wildcard matches brings its target.
TEST_F(FileSyncTest, FollowPathsAreGlobPatterns) {
  const auto& root = src_.path();
  write_text(root / "a.txt", "a");
  write_text(root / "b.txt", "b");
  write_text(root / "c.md", "c");
  fs::create_directories(root / "src");
  write_text(root / "src/c.go", "c");
  write_text(root / "src/d.txt", "d");
  fs::create_directories(root / "real");
  write_text(root / "real/r.txt", "r");
  write_text(root / "real/other", "o");
  fs::create_symlink("real/r.txt", root / "link.txt");
  write_text(root / "[x]", "literal brackets");
  write_text(root / "y", "y");
  start({{"context", root}});
  auto received = get({{"dir-name", "context"},
                       {"followpaths", "*.txt"},
                       {"followpaths", "src/*.go"},
                       {"followpaths", "[[]x]"},
                       {"followpaths", "[xy]"},
                       {"followpaths", "no-such-*"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.order_error, "");
  EXPECT_EQ(received.paths(), (std::vector<std::string>{"[x]", "a.txt", "b.txt", "link.txt", "real",
                                                        "real/r.txt", "src", "src/c.go", "y"}));
  expect_matches_source(received, root);
}

// A followpath that is the root (COPY . /) lifts the filter: everything goes.
TEST_F(FileSyncTest, AFollowPathOfTheRootSendsEverything) {
  const auto& root = src_.path();
  write_text(root / "a", "a");
  fs::create_directories(root / "d");
  write_text(root / "d/b", "b");
  start({{"context", root}});
  auto received = get({{"dir-name", "context"}, {"followpaths", "."}, {"followpaths", "a"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.paths(), (std::vector<std::string>{"a", "d", "d/b"}));
}

// A file name or a link target that is not UTF-8 is sent as it is, as
// fsutil (Go strings: bytes) sends it.
TEST_F(FileSyncTest, NamesThatAreNotUtf8AreSentAsTheyAre) {
  const auto& root = src_.path();
  write_text(root / "bad\xff\xfe", "bytes");
  fs::create_symlink("tar\xffget", root / "link");
  start({{"context", root}});
  auto received = get({{"dir-name", "context"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.paths(), (std::vector<std::string>{"bad\xff\xfe", "link"}));
  expect_matches_source(received, root);
}

TEST_F(FileSyncTest, EncodedMetadataIsUnescaped) {
  const auto& root = src_.path();
  write_text(root / "\xc3\xa9t\xc3\xa9.txt", "summer");
  write_text(root / "keep.txt", "k");
  start({{"context", root}});
  auto received = get({{"dir-name", "context"},
                       {"exclude-patterns", "%C3%A9t%C3%A9%2A"},
                       {"exclude-patterns-encoded", "1"}});
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.paths(), (std::vector<std::string>{"keep.txt"}));
}

TEST_F(FileSyncTest, BadPatternIsInvalidArgument) {
  start({{"context", src_.path()}});
  auto received = get({{"dir-name", "context"}, {"exclude-patterns", "[oops"}});
  EXPECT_EQ(received.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FileSyncTest, ReceiverErrorFailsTheCall) {
  write_text(src_.path() / "f", "f");
  start({{"context", src_.path()}});
  auto received = receive(server_->channel(), {{"dir-name", "context"}},
                          [](Received&, grpc::ClientReaderWriter<Packet, Packet>& stream) {
                            Packet err;
                            err.set_type(Packet::PACKET_ERR);
                            err.set_data("disk full");
                            stream.Write(err);
                            Packet packet;
                            while (stream.Read(&packet)) {
                            }
                          });
  EXPECT_FALSE(received.status.ok());
}

TEST_F(FileSyncTest, UnknownRequestIdIsAProtocolError) {
  write_text(src_.path() / "f", "f");
  start({{"context", src_.path()}});
  auto received = receive(server_->channel(), {{"dir-name", "context"}},
                          [](Received& out, grpc::ClientReaderWriter<Packet, Packet>& stream) {
                            Packet request;
                            request.set_type(Packet::PACKET_REQ);
                            request.set_id(99);
                            stream.Write(request);
                            Packet packet;
                            while (stream.Read(&packet)) {
                              if (packet.type() == Packet::PACKET_ERR) {
                                out.err_packet = packet.data();
                                break;  // like fsutil's receiver
                              }
                            }
                          });
  EXPECT_FALSE(received.status.ok());
  EXPECT_NE(received.err_packet.find("99"), std::string::npos) << received.err_packet;
}

TEST_F(FileSyncTest, DuplicateRequestIsAProtocolError) {
  write_text(src_.path() / "f", "f");
  start({{"context", src_.path()}});
  auto received = receive(server_->channel(), {{"dir-name", "context"}},
                          [](Received& out, grpc::ClientReaderWriter<Packet, Packet>& stream) {
                            Packet request;
                            request.set_type(Packet::PACKET_REQ);
                            request.set_id(0);  // already requested when its STAT came
                            stream.Write(request);
                            Packet packet;
                            while (stream.Read(&packet)) {
                              if (packet.type() == Packet::PACKET_ERR) {
                                out.err_packet = packet.data();
                                break;  // like fsutil's receiver
                              }
                            }
                          });
  EXPECT_FALSE(received.status.ok());
  EXPECT_NE(received.err_packet.find("already sent file ID 0"), std::string::npos)
      << received.err_packet;
}

// A regular file that becomes a FIFO between the walk and the daemon's
// request for its data (the build context is the repository's to change)
// fails the send, naming it: opening it must neither block the send nor read
// the pipe, and sending it empty (as fsutil does) would build an image with
// its content silently lost.
TEST_F(FileSyncTest, AFileTurnedIntoAFifoAfterTheWalkFailsTheSend) {
  write_text(src_.path() / "became-fifo", "was a file");
  start({{"context", src_.path()}});
  auto received = receive(server_->channel(), {{"dir-name", "context"}}, nullptr,
                          [&](const fsutil::types::Stat& stat) {
                            if (stat.path() != "became-fifo") return;
                            fs::remove(src_.path() / "became-fifo");
                            ASSERT_EQ(::mkfifo((src_.path() / "became-fifo").c_str(), 0644), 0);
                          });
  EXPECT_FALSE(received.status.ok());
  EXPECT_EQ(received.err_packet,
            "'became-fifo' changed while it was sent: it is no longer a regular file");
}

// So is one turned into a link (never followed), and a name holding a
// newline is shown escaped, keeping the error on one line.
TEST_F(FileSyncTest, AFileTurnedIntoALinkAfterTheWalkFailsTheSend) {
  write_text(src_.path() / "became\nlink", "was a file");
  start({{"context", src_.path()}});
  auto received = receive(server_->channel(), {{"dir-name", "context"}}, nullptr,
                          [&](const fsutil::types::Stat& stat) {
                            if (stat.path() != "became\nlink") return;
                            fs::remove(src_.path() / "became\nlink");
                            fs::create_symlink("/etc/passwd", src_.path() / "became\nlink");
                          });
  EXPECT_FALSE(received.status.ok());
  EXPECT_EQ(received.err_packet,
            "'became\\x0alink' changed while it was sent: it is no longer a regular file");
}

// A file that cannot be opened when the daemon asks for it (here removed
// after the walk; EACCES takes the same path, which root cannot show) fails
// the send with the file and the reason, never an empty file.
TEST_F(FileSyncTest, AFileThatCannotBeOpenedFailsTheSendNamingIt) {
  write_text(src_.path() / "gone", "was here");
  start({{"context", src_.path()}});
  auto received = receive(server_->channel(), {{"dir-name", "context"}}, nullptr,
                          [&](const fsutil::types::Stat& stat) {
                            if (stat.path() == "gone") fs::remove(src_.path() / "gone");
                          });
  EXPECT_FALSE(received.status.ok());
  EXPECT_EQ(received.err_packet, "cannot read 'gone': No such file or directory");
}

TEST_F(FileSyncTest, TwentyThousandFiles) {
  const auto& root = src_.path();
  constexpr int kDirs = 100;
  constexpr int kFiles = 200;
  std::uint64_t total = 0;
  for (int d = 0; d < kDirs; ++d) {
    auto dir = root / ("d" + std::to_string(d));
    fs::create_directory(dir);
    for (int f = 0; f < kFiles; ++f) {
      std::string content = "file " + std::to_string(d) + "/" + std::to_string(f) + "\n";
      content.append(static_cast<std::size_t>((d * 37 + f * 11) % 3000), 'x');
      total += content.size();
      write_text(dir / ("f" + std::to_string(f)), content);
    }
  }
  start({{"context", root}});
  auto begin = std::chrono::steady_clock::now();
  auto received = get({{"dir-name", "context"}});
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  EXPECT_EQ(received.order_error, "");
  ASSERT_EQ(received.entries.size(), static_cast<std::size_t>(kDirs * (kFiles + 1)));
  std::printf("[ perf     ] %d files, %.1f MiB in %.3f s (%.0f files/s)\n", kDirs * kFiles,
              static_cast<double>(total) / (1 << 20), elapsed, kDirs * kFiles / elapsed);
  expect_matches_source(received, root);
}

TEST_F(FileSyncTest, LargeFileStreams) {
  const auto& root = src_.path();
  constexpr off_t kSize = 256LL << 20;
  {
    int fd = ::open((root / "big").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, kSize), 0);
    for (off_t at = 0; at < kSize; at += 1 << 20) {
      std::string mark = "mark " + std::to_string(at);
      ASSERT_EQ(::pwrite(fd, mark.data(), mark.size(), at + 12345),
                static_cast<ssize_t>(mark.size()));
    }
    ::close(fd);
  }
  start({{"context", root}});
  auto begin = std::chrono::steady_clock::now();
  auto received = get({{"dir-name", "context"}});
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  ASSERT_TRUE(received.status.ok()) << received.status.error_message();
  ASSERT_EQ(received.entries.size(), 1u);
  EXPECT_EQ(received.entries[0].bytes, static_cast<std::uint64_t>(kSize));
  // 1 MiB chunks: 256 messages where 32 KiB ones made 8,192, each
  // under the 4 MiB this receiver's gRPC (the default, as the daemon's)
  // accepts; a larger one would have failed the call.
  EXPECT_EQ(received.entries[0].data_packets, 256u);
  EXPECT_EQ(received.entries[0].largest_data, std::size_t{1} << 20);
  std::printf("[ perf     ] 256 MiB file in %.3f s (%.0f MiB/s, incl. receiver hashing)\n", elapsed,
              256 / elapsed);
  expect_matches_source(received, root);
}

}  // namespace
}  // namespace envd::buildkit
