// SPDX-License-Identifier: MIT
// A value-or-error result for the CAF-free libraries (net/, dns/).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace networkd {

/// Why an operation failed: a short machine-readable code and a message for
/// operators. Codes are stable strings ("unavailable", "timeout", ...).
struct failure {
  std::string code;
  std::string message;
  std::string to_string() const { return code + ": " + message; }
};

/// Holds either a T or a failure. Exceptions never cross this boundary.
template <class T>
class result {
public:
  result(T value) : v_(std::move(value)) {}
  result(failure f) : v_(std::move(f)) {}
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const failure& error() const { return std::get<1>(v_); }

private:
  std::variant<T, failure> v_;
};

/// The result of an operation that yields nothing but success.
struct unit {};

inline failure make_failure(std::string code, std::string message) {
  return failure{std::move(code), std::move(message)};
}

} // namespace networkd
