#include "buildkit/secrets.hpp"

#include <gtest/gtest.h>

#include <string>

#include "buildkit/attachables_test_support.hpp"
#include "github.com/moby/buildkit/session/secrets/secrets.grpc.pb.h"
#include "util/test_support.hpp"

namespace envd::buildkit {
namespace {

namespace pb = moby::buildkit::secrets::v1;
using util::testing::TempDir;

const std::string kBinary("to\0ken\n\xff", 8);

grpc::Status get_secret(pb::Secrets::Stub& stub, const std::string& id, std::string* data) {
  grpc::ClientContext context;
  pb::GetSecretRequest request;
  request.set_id(id);
  (*request.mutable_annotations())["purpose"] = "test";
  pb::GetSecretResponse response;
  auto status = stub.GetSecret(&context, request, &response);
  *data = response.data();
  return status;
}

TEST(SecretsTest, FindsByExactId) {
  SecretsProvider provider({{"npm", "s3cr3t"}, {"bin", kBinary}});
  ASSERT_NE(provider.find("npm"), nullptr);
  EXPECT_EQ(*provider.find("npm"), "s3cr3t");
  EXPECT_EQ(*provider.find("bin"), kBinary);
  EXPECT_EQ(provider.find("NPM"), nullptr);
  EXPECT_EQ(provider.find(""), nullptr);
  EXPECT_EQ(provider.methods(),
            std::vector<std::string>{"/moby.buildkit.secrets.v1.Secrets/GetSecret"});
}

TEST(SecretsTest, ServesBytesAndNotFoundOverGrpc) {
  SecretsProvider provider({{"npm", "s3cr3t"}, {"bin", kBinary}, {"empty", ""}});
  TempDir sock;
  testing::LoopbackServer server(sock.path(), {&provider});
  ASSERT_TRUE(server.started());
  auto stub = pb::Secrets::NewStub(server.channel());

  std::string data;
  auto status = get_secret(*stub, "bin", &data);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(data, kBinary);
  ASSERT_TRUE(get_secret(*stub, "npm", &data).ok());
  EXPECT_EQ(data, "s3cr3t");
  ASSERT_TRUE(get_secret(*stub, "empty", &data).ok());
  EXPECT_EQ(data, "");

  // BuildKit's daemon reads NOT_FOUND as "no such secret" (and skips an
  // optional mount); the message names the id and never a value.
  status = get_secret(*stub, "missing", &data);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("'missing'"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("--secret id=missing"), std::string::npos);
  EXPECT_EQ(status.error_message().find("s3cr3t"), std::string::npos);
  EXPECT_EQ(data, "");
  EXPECT_EQ(get_secret(*stub, "", &data).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(SecretsTest, EmptyStoreAnswersNotFound) {
  SecretsProvider provider({});
  TempDir sock;
  testing::LoopbackServer server(sock.path(), {&provider});
  ASSERT_TRUE(server.started());
  auto stub = pb::Secrets::NewStub(server.channel());
  std::string data;
  auto status = get_secret(*stub, "id\n\x1b[31m", &data);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  // A hostile id cannot break the line the daemon shows.
  EXPECT_EQ(status.error_message().find('\n'), std::string::npos);
  EXPECT_EQ(status.error_message().find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace envd::buildkit
