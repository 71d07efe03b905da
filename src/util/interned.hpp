// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// A string kept once per process and passed around as a pointer: filesystem identities and
// walk roots, which a scan of a million files would otherwise copy into every file's record,
// every index key and every report row (a "btrfs:<uuid>" is 42 bytes and a heap block each).
// The set of distinct values is small (one per filesystem, one per PATH or mount point) and
// lives as long as the process; interning takes a lock, copying an interned value does not,
// so hot paths copy one interned where they used to copy a string.
//
// Equality compares pointers (equal text is one pointer); ordering and hashing use the text,
// so sorted output and copy_key order are what they were with strings.

#include <fmt/format.h>

#include <compare>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace dupcache {

class interned {
 public:
  interned() : s_(intern({})) {}
  interned(std::string_view text) : s_(intern(text)) {}  // NOLINT: implicit, as a string is
  interned(const std::string& text) : s_(intern(text)) {}  // NOLINT
  interned(const char* text) : s_(intern(text)) {}        // NOLINT

  const std::string& str() const { return *s_; }
  operator const std::string&() const { return *s_; }  // NOLINT: reads as the string it is
  const char* c_str() const { return s_->c_str(); }
  bool empty() const { return s_->empty(); }
  std::size_t size() const { return s_->size(); }

  friend bool operator==(const interned& a, const interned& b) { return a.s_ == b.s_; }
  friend bool operator==(const interned& a, std::string_view b) { return *a.s_ == b; }
  friend bool operator==(const interned& a, const std::string& b) { return *a.s_ == b; }
  friend bool operator==(const interned& a, const char* b) { return *a.s_ == b; }
  friend std::strong_ordering operator<=>(const interned& a, const interned& b) {
    if (a.s_ == b.s_) return std::strong_ordering::equal;
    return a.s_->compare(*b.s_) <=> 0;
  }
  friend std::strong_ordering operator<=>(const interned& a, std::string_view b) { return a.s_->compare(b) <=> 0; }
  friend std::string operator+(const interned& a, std::string_view b) { return *a.s_ + std::string(b); }
  friend std::string operator+(std::string_view a, const interned& b) { return std::string(a) + *b.s_; }

 private:
  static const std::string* intern(std::string_view text);
  const std::string* s_;
};

}  // namespace dupcache

template <>
struct std::hash<dupcache::interned> {
  std::size_t operator()(const dupcache::interned& v) const noexcept { return std::hash<std::string>{}(v.str()); }
};

template <>
struct fmt::formatter<dupcache::interned> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const dupcache::interned& v, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(v.str()), ctx);
  }
};
