// The PruneRequest `envd prune` sends: each option lands in its proto field
// (the e2e suite shows the daemon honours them).
#include <gtest/gtest.h>

#include "buildkit/client.hpp"
#include "github.com/moby/buildkit/api/services/control/control.pb.h"

namespace envd::buildkit {
namespace {

namespace bk = moby::buildkit::v1;

bk::PruneRequest sent(const PruneOptions& options) {
  bk::PruneRequest request;
  EXPECT_TRUE(request.ParseFromString(Client::prune_request_bytes(options)));
  return request;
}

TEST(PruneRequest, DefaultsAskForWhatGcWouldRemove) {
  auto r = sent({});
  EXPECT_FALSE(r.all());
  EXPECT_EQ(r.keepduration(), 0);
  EXPECT_EQ(r.reservedspace(), 0);
  EXPECT_EQ(r.filter_size(), 0);
}

TEST(PruneRequest, AllKeepDurationKeepBytesAndFiltersAreWired) {
  PruneOptions options;
  options.all = true;
  options.keep_duration = std::chrono::hours(48);
  options.keep_bytes = 10'000'000'000;
  options.filters = {"type==source.local"};
  auto r = sent(options);
  EXPECT_TRUE(r.all());
  EXPECT_EQ(r.keepduration(), 48LL * 3600 * 1'000'000'000);
  EXPECT_EQ(r.reservedspace(), 10'000'000'000);  // field 4, keepBytes before v0.17
  ASSERT_EQ(r.filter_size(), 1);
  EXPECT_EQ(r.filter(0), "type==source.local");
}

}  // namespace
}  // namespace envd::buildkit
