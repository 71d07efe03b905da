// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace dupcache {

// A recoverable failure: what was being done and the errno it failed with (0 when the
// failure is not a system error). Rendered as "action failed: reason".
struct error {
  std::string action;
  int err = 0;
  std::string detail;  // used instead of strerror(err) when set

  std::string reason() const { return detail.empty() ? std::string(std::strerror(err)) : detail; }
  std::string message() const { return action + " failed: " + reason(); }
};

inline error errno_error(std::string action, int err = errno) { return error{std::move(action), err, {}}; }
inline error plain_error(std::string action, std::string detail) {
  return error{std::move(action), 0, std::move(detail)};
}

template <typename T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(error e) : v_(std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

template <>
class result<void> {
 public:
  result() = default;
  result(error e) : e_(std::move(e)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const error& err() const { return e_; }

 private:
  error e_;
  bool ok_ = true;
};

}  // namespace dupcache
