#include "buildkit/content_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "buildkit/attachables_test_support.hpp"
#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"
#include "util/test_support.hpp"

namespace envd::buildkit {
namespace {

namespace pb = containerd::services::content::v1;
namespace fs = std::filesystem;
using util::testing::read_text;
using util::testing::TempDir;
using namespace std::string_literals;

// Plays the daemon: every call names its store as BuildKit's caller does.
class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = sock_.path() / "cache";
    provider_ = std::make_unique<ContentStoreProvider>(std::vector<fs::path>{cache_});
    server_ = std::make_unique<testing::LoopbackServer>(sock_.path(),
                                                        std::vector<Attachable*>{provider_.get()});
    ASSERT_TRUE(server_->started());
    stub_ = pb::Content::NewStub(server_->channel());
  }

  std::unique_ptr<grpc::ClientContext> context(const std::string& id = "") const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata(kContentStoreIdKey, id.empty() ? ContentStoreProvider::store_id(cache_) : id);
    return ctx;
  }

  fs::path blob(const std::string& digest) const {
    return cache_ / "blobs" / "sha256" / digest.substr(7);
  }

  using Stream = grpc::ClientReaderWriter<pb::WriteContentRequest, pb::WriteContentResponse>;

  static pb::WriteContentRequest request(pb::WriteAction action, int64_t offset = 0,
                                         const std::string& data = "") {
    pb::WriteContentRequest req;
    req.set_action(action);
    req.set_offset(offset);
    req.set_data(data);
    return req;
  }

  // Writes `data` in two WRITEs and commits, as the daemon's proxy writer does.
  grpc::Status put(const std::string& ref, const std::string& data, const std::string& expected,
                   int64_t total) {
    auto ctx = context();
    auto stream = stub_->Write(ctx.get());
    auto first = request(pb::WRITE_ACTION_STAT);
    first.set_ref(ref);
    first.set_total(total);
    first.set_expected(expected);
    pb::WriteContentResponse resp;
    if (!stream->Write(first) || !stream->Read(&resp)) return stream->Finish();
    std::string head = data.substr(0, data.size() / 2);
    if (!stream->Write(request(pb::WRITE_ACTION_WRITE, 0, head)) || !stream->Read(&resp)) {
      return stream->Finish();
    }
    EXPECT_EQ(resp.offset(), static_cast<int64_t>(head.size()));
    auto commit = request(pb::WRITE_ACTION_COMMIT, resp.offset(), data.substr(head.size()));
    commit.set_total(total);
    commit.set_expected(expected);
    if (!stream->Write(commit) || !stream->Read(&resp)) return stream->Finish();
    stream->WritesDone();
    auto status = stream->Finish();
    if (status.ok()) {
      EXPECT_EQ(resp.offset(), static_cast<int64_t>(data.size()));
      EXPECT_EQ(resp.digest(), sha256_digest(data));
    }
    return status;
  }

  // Writes `data` under `ref` and half-closes without COMMIT.
  grpc::Status leave_unfinished(const std::string& ref, const std::string& data) {
    auto ctx = context();
    auto stream = stub_->Write(ctx.get());
    auto first = request(pb::WRITE_ACTION_WRITE, 0, data);
    first.set_ref(ref);
    pb::WriteContentResponse resp;
    if (stream->Write(first)) stream->Read(&resp);
    stream->WritesDone();
    auto st = stream->Finish();
    if (st.ok()) {
      EXPECT_EQ(resp.offset(), static_cast<int64_t>(data.size()));
    }
    return st;
  }

  grpc::Status read(const std::string& digest, int64_t offset, int64_t size, std::string* out) {
    auto ctx = context();
    pb::ReadContentRequest req;
    req.set_digest(digest);
    req.set_offset(offset);
    req.set_size(size);
    auto reader = stub_->Read(ctx.get(), req);
    pb::ReadContentResponse chunk;
    out->clear();
    while (reader->Read(&chunk)) *out += chunk.data();
    return reader->Finish();
  }

  grpc::Status status(const std::string& ref, pb::Status* out) {
    auto ctx = context();
    pb::StatusRequest req;
    req.set_ref(ref);
    pb::StatusResponse resp;
    auto st = stub_->Status(ctx.get(), req, &resp);
    *out = resp.status();
    return st;
  }

  TempDir sock_;
  fs::path cache_;
  std::unique_ptr<ContentStoreProvider> provider_;
  std::unique_ptr<testing::LoopbackServer> server_;
  std::unique_ptr<pb::Content::Stub> stub_;
};

TEST(ContentStoreDigestTest, Sha256AndValidation) {
  EXPECT_EQ(sha256_digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(valid_sha256_digest(sha256_digest("")));
  EXPECT_FALSE(
      valid_sha256_digest("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61"
                          "F20015AD"));
  EXPECT_FALSE(valid_sha256_digest("sha256:../../etc/passwd"));
  EXPECT_FALSE(valid_sha256_digest("sha512:ba78"));
  EXPECT_FALSE(valid_sha256_digest(sha256_digest("x") + "0"));
}

TEST_F(ContentStoreTest, AdvertisesTheContentMethods) {
  auto methods = provider_->methods();
  EXPECT_NE(
      std::find(methods.begin(), methods.end(), "/containerd.services.content.v1.Content/Write"),
      methods.end());
  EXPECT_NE(
      std::find(methods.begin(), methods.end(), "/containerd.services.content.v1.Content/Read"),
      methods.end());
  EXPECT_EQ(ContentStoreProvider::store_id("/tmp/c"), "local:/tmp/c");
}

TEST_F(ContentStoreTest, WritesCommitsAndReadsWithOffsets) {
  const std::string data = "layer bytes \0 with a nul and more text to split"s;
  const std::string digest = sha256_digest(data);
  auto st = put("layer-" + digest, data, digest, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(read_text(blob(digest)), data);
  struct stat info {};
  ASSERT_EQ(::stat(blob(digest).c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0444U);
  // No ingest file is left behind.
  EXPECT_TRUE(fs::is_empty(cache_ / "ingest"));

  auto ctx = context();
  pb::InfoRequest info_req;
  info_req.set_digest(digest);
  pb::InfoResponse info_resp;
  ASSERT_TRUE(stub_->Info(ctx.get(), info_req, &info_resp).ok());
  EXPECT_EQ(info_resp.info().size(), static_cast<int64_t>(data.size()));
  EXPECT_EQ(info_resp.info().digest(), digest);

  std::string got;
  ASSERT_TRUE(read(digest, 0, 0, &got).ok());
  EXPECT_EQ(got, data);
  ASSERT_TRUE(read(digest, 6, 5, &got).ok());
  EXPECT_EQ(got, "bytes");
  ASSERT_TRUE(read(digest, 6, 100000, &got).ok());  // clipped to the end
  EXPECT_EQ(got, data.substr(6));
  EXPECT_EQ(read(digest, static_cast<int64_t>(data.size()) + 1, 0, &got).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
}

TEST_F(ContentStoreTest, LargeBlobsAreReadInChunks) {
  std::string data(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < data.size(); i += 4093) data[i] = static_cast<char>(i);
  const std::string digest = sha256_digest(data);
  ASSERT_TRUE(put("big", data, digest, 0).ok());
  std::string got;
  ASSERT_TRUE(read(digest, 0, 0, &got).ok());
  EXPECT_EQ(got, data);
}

TEST_F(ContentStoreTest, RejectsAWrongDigestOrSize) {
  const std::string data = "the real content";
  const std::string wrong = sha256_digest("something else");
  auto st = put("ref-a", data, wrong, static_cast<int64_t>(data.size()));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("unexpected commit digest"), std::string::npos);
  EXPECT_FALSE(fs::exists(blob(wrong)));
  EXPECT_FALSE(fs::exists(blob(sha256_digest(data))));

  st = put("ref-b", data, "", static_cast<int64_t>(data.size()) + 1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("unexpected commit size"), std::string::npos);

  st = put("ref-c", data, "sha256:../../escape", 0);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ContentStoreTest, AnExistingBlobIsAlreadyExists) {
  const std::string data = "cached once";
  const std::string digest = sha256_digest(data);
  ASSERT_TRUE(put("first", data, digest, static_cast<int64_t>(data.size())).ok());
  // The daemon negotiates with the expected digest and skips on ALREADY_EXISTS.
  auto st = put("second", data, digest, static_cast<int64_t>(data.size()));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  pb::Status ingest;
  EXPECT_EQ(status("second", &ingest).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ContentStoreTest, StatusResumeAndAbort) {
  const std::string data = "0123456789";
  const std::string digest = sha256_digest(data);
  {
    auto ctx = context();
    auto stream = stub_->Write(ctx.get());
    auto first = request(pb::WRITE_ACTION_WRITE, 0, "01234");
    first.set_ref("resume-me");
    first.set_total(10);
    pb::WriteContentResponse resp;
    ASSERT_TRUE(stream->Write(first));
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.offset(), 5);
    // A second Write on the same ref while this one runs is refused.
    auto other_ctx = context();
    auto other = stub_->Write(other_ctx.get());
    auto again = request(pb::WRITE_ACTION_STAT);
    again.set_ref("resume-me");
    ASSERT_TRUE(other->Write(again));
    other->WritesDone();
    EXPECT_EQ(other->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
    stream->WritesDone();
    ASSERT_TRUE(stream->Finish().ok());
  }
  pb::Status ingest;
  ASSERT_TRUE(status("resume-me", &ingest).ok());
  EXPECT_EQ(ingest.ref(), "resume-me");
  EXPECT_EQ(ingest.offset(), 5);
  EXPECT_EQ(ingest.total(), 10);
  {
    auto ctx = context();
    pb::ListStatusesRequest req;
    pb::ListStatusesResponse resp;
    ASSERT_TRUE(stub_->ListStatuses(ctx.get(), req, &resp).ok());
    ASSERT_EQ(resp.statuses_size(), 1);
    EXPECT_EQ(resp.statuses(0).ref(), "resume-me");
  }
  {
    // Resume where the ingest stopped: STAT tells the offset.
    auto ctx = context();
    auto stream = stub_->Write(ctx.get());
    auto stat = request(pb::WRITE_ACTION_STAT);
    stat.set_ref("resume-me");
    pb::WriteContentResponse resp;
    ASSERT_TRUE(stream->Write(stat));
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.offset(), 5);
    EXPECT_EQ(resp.digest(), sha256_digest("01234"));
    // A write at another offset is refused.
    ASSERT_TRUE(stream->Write(request(pb::WRITE_ACTION_WRITE, 3, "x")));
    EXPECT_FALSE(stream->Read(&resp));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
  }
  {
    auto ctx = context();
    auto stream = stub_->Write(ctx.get());
    auto commit = request(pb::WRITE_ACTION_COMMIT, 5, "56789");
    commit.set_ref("resume-me");
    commit.set_expected(digest);
    pb::WriteContentResponse resp;
    ASSERT_TRUE(stream->Write(commit));
    ASSERT_TRUE(stream->Read(&resp));
    stream->WritesDone();
    ASSERT_TRUE(stream->Finish().ok());
    EXPECT_EQ(resp.digest(), digest);
  }
  EXPECT_EQ(read_text(blob(digest)), data);

  // Abort drops an ingest and its file.
  ASSERT_TRUE(leave_unfinished("drop-me", "partial").ok());
  EXPECT_FALSE(fs::is_empty(cache_ / "ingest"));
  auto ctx = context();
  pb::AbortRequest abort;
  abort.set_ref("drop-me");
  envd::wellknown::Empty empty;
  ASSERT_TRUE(stub_->Abort(ctx.get(), abort, &empty).ok());
  EXPECT_TRUE(fs::is_empty(cache_ / "ingest"));
  EXPECT_EQ(status("drop-me", &ingest).error_code(), grpc::StatusCode::NOT_FOUND);
  auto ctx2 = context();
  EXPECT_EQ(stub_->Abort(ctx2.get(), abort, &empty).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ContentStoreTest, UnknownStoresAndDigests) {
  pb::InfoRequest req;
  req.set_digest(sha256_digest("never written"));
  pb::InfoResponse resp;
  auto ctx = context();
  EXPECT_EQ(stub_->Info(ctx.get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  auto other = context("local:/somewhere/else");
  EXPECT_EQ(stub_->Info(other.get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext bare;
  auto st = stub_->Info(&bare, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find(kContentStoreIdKey), std::string::npos);

  req.set_digest("sha256:../../../etc/passwd");
  auto bad = context();
  EXPECT_EQ(stub_->Info(bad.get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ContentStoreTest, DestructionRemovesUnfinishedIngests) {
  ASSERT_TRUE(leave_unfinished("left", "half").ok());
  EXPECT_FALSE(fs::is_empty(cache_ / "ingest"));
  server_.reset();
  provider_.reset();
  EXPECT_FALSE(fs::exists(cache_ / "ingest"));
}

}  // namespace
}  // namespace envd::buildkit
