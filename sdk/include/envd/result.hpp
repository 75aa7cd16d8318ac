// The error type used everywhere inside the envd core and SDK.
//
// Fallible functions return envd::Result<T> (or envd::Status for no value). The
// type is [[nodiscard]], so an ignored failure is a compile warning (an error in
// CI). Exceptions are not used for expected failures; the CLI turns an Error into
// one line on stderr and an exit code, and the plugin glue turns it into an
// envd_status plus message at the C boundary.
//
// Messages follow one style: start lowercase, name the object that failed and
// why, no trailing period, e.g.
//   context store '/home/u/.config/envd/contexts.json' is corrupt: ...
#pragma once

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "envd/plugin_abi.h"

namespace envd {

// Why something failed. Values map one-to-one onto envd_status.
enum class Errc {
  invalid_argument = ENVD_ERR_INVALID_ARGUMENT,
  not_found = ENVD_ERR_NOT_FOUND,
  already_exists = ENVD_ERR_ALREADY_EXISTS,
  unavailable = ENVD_ERR_UNAVAILABLE,
  unsupported = ENVD_ERR_UNSUPPORTED,
  timeout = ENVD_ERR_TIMEOUT,
  permission = ENVD_ERR_PERMISSION,
  cancelled = ENVD_ERR_CANCELLED,
  internal = ENVD_ERR_INTERNAL,
};

// A failure: a code callers may branch on, and a message for humans.
class Error {
 public:
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  Errc code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<prefix>: <message>", for adding context
  // while an error travels up ("cannot load plugin 'x': <why>").
  Error wrap(const std::string& prefix) const { return Error(code_, prefix + ": " + message_); }

 private:
  Errc code_;
  std::string message_;
};

// Either a T or an Error. Cheap to move; check before use:
//   auto r = load();
//   if (!r) return r.error();
//   use(*r);
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Success or an Error, for operations that produce no value.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(failed_);
    return error_;
  }

 private:
  Error error_{Errc::internal, {}};
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace envd
