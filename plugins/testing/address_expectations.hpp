// Test helpers for driver address grammars (test-only, never installed).
//
//   constexpr auto normalized = test_support::normalized<TcpBuilder>;
//   EXPECT_EQ(normalized("tcp://h:1"), "h:1");
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "envd/result.hpp"

namespace envd::plugins::test_support {

// The stored form of `address`; fails the test if the driver rejects it.
template <typename Driver>
std::string normalized(const std::string& address) {
  auto result = Driver().normalize_address(address);
  EXPECT_TRUE(result) << address << ": " << result.error().message();
  return result ? *result : "<rejected: " + result.error().message() + ">";
}

// The message with which the driver rejects `address`; fails the test if it
// accepts it or fails with a code other than Errc::invalid_argument.
template <typename Driver>
std::string rejected(const std::string& address) {
  auto result = Driver().normalize_address(address);
  if (result) return "<accepted as " + *result + ">";
  EXPECT_EQ(result.error().code(), Errc::invalid_argument) << address;
  return result.error().message();
}

}  // namespace envd::plugins::test_support
