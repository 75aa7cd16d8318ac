#include "base64.hpp"

#include <gtest/gtest.h>

namespace envd::sdk {
namespace {

TEST(Base64, EncodesTheRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("{}"), "e30=");
}

TEST(Base64, TheUrlAlphabetReplacesPlusAndSlash) {
  const std::string bytes("\xfb\xff\xbf", 3);
  EXPECT_EQ(base64_encode(bytes), "+/+/");
  EXPECT_EQ(base64_encode(bytes, Base64Alphabet::url), "-_-_");
  EXPECT_EQ(base64_encode("\xff", Base64Alphabet::url), "_w==");
}

TEST(Base64, DecodesBothAlphabetsWithOrWithoutPadding) {
  EXPECT_EQ(base64_decode("Zm9vYmFy").value(), "foobar");
  EXPECT_EQ(base64_decode("Zm9vYg==").value(), "foob");
  EXPECT_EQ(base64_decode("Zm9vYg").value(), "foob");
  EXPECT_EQ(base64_decode("+/+/").value(), std::string("\xfb\xff\xbf", 3));
  EXPECT_EQ(base64_decode("-_-_").value(), std::string("\xfb\xff\xbf", 3));
  EXPECT_EQ(base64_decode("").value(), "");
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    auto part = all.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(part)).value(), part);
    EXPECT_EQ(base64_decode(base64_encode(part, Base64Alphabet::url)).value(), part);
  }
}

TEST(Base64, RefusesWhatNoEncoderWrites) {
  EXPECT_EQ(base64_decode("Zm9v!").error().message(),
            "invalid base64: unexpected character at offset 4");
  EXPECT_EQ(base64_decode("Zg==Zg").error().message(), "invalid base64: data after padding");
  EXPECT_EQ(base64_decode("Z").error().message(), "invalid base64: truncated input");
  EXPECT_EQ(base64_decode("Zg=").error().message(), "invalid base64: truncated input");
  EXPECT_EQ(base64_decode("Zm9v YmFy").error().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace envd::sdk
