// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// A string held in one heap block of its own size (its length, its bytes and a NUL) behind one
// pointer: 8 bytes in place of a std::string's 32, for the path in every scanned file's
// record, which a scan of a million cached files keeps a million of (issue 17). The heap block
// is what a std::string of the same text would have allocated. Empty holds no block.
//
// It reads as the text it holds (string_view, c_str(), comparisons, fmt); a std::string is
// made only where one is asked for (str(), or a conversion where a const std::string& is
// taken).

#include <fmt/format.h>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace dupcache {

class packed_string {
 public:
  packed_string() = default;
  packed_string(std::string_view text) { assign(text); }   // NOLINT: implicit, as a string is
  packed_string(const std::string& text) { assign(text); }  // NOLINT
  packed_string(const char* text) { assign(text); }         // NOLINT
  packed_string(const packed_string& o) { assign(o.view()); }
  packed_string(packed_string&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ~packed_string() { delete[] p_; }

  packed_string& operator=(const packed_string& o) {
    if (this != &o) assign(o.view());
    return *this;
  }
  packed_string& operator=(packed_string&& o) noexcept {
    if (this != &o) {
      delete[] p_;
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  packed_string& operator=(std::string_view text) {
    assign(text);
    return *this;
  }
  packed_string& operator=(const std::string& text) { return *this = std::string_view(text); }
  packed_string& operator=(const char* text) { return *this = std::string_view(text); }

  std::string_view view() const {
    if (p_ == nullptr) return {};
    std::uint32_t n = 0;
    std::memcpy(&n, p_, sizeof n);
    return {p_ + sizeof n, n};
  }
  std::string str() const { return std::string(view()); }
  operator std::string_view() const { return view(); }  // NOLINT: reads as the text it is
  operator std::string() const { return str(); }        // NOLINT
  const char* c_str() const { return p_ == nullptr ? "" : p_ + sizeof(std::uint32_t); }
  bool empty() const { return p_ == nullptr; }
  std::size_t size() const { return view().size(); }

  friend bool operator==(const packed_string& a, const packed_string& b) { return a.view() == b.view(); }
  friend bool operator==(const packed_string& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(const packed_string& a, const std::string& b) { return a.view() == b; }
  friend bool operator==(const packed_string& a, const char* b) { return a.view() == b; }
  friend std::strong_ordering operator<=>(const packed_string& a, const packed_string& b) {
    return a.view().compare(b.view()) <=> 0;
  }
  friend std::strong_ordering operator<=>(const packed_string& a, std::string_view b) {
    return a.view().compare(b) <=> 0;
  }
  friend std::strong_ordering operator<=>(const packed_string& a, const std::string& b) {
    return a.view().compare(b) <=> 0;
  }
  friend std::string operator+(const packed_string& a, std::string_view b) { return a.str() + std::string(b); }
  friend std::string operator+(std::string_view a, const packed_string& b) { return std::string(a) + b.str(); }
  friend std::string operator+(const packed_string& a, const std::string& b) { return a.str() + b; }
  friend std::string operator+(const std::string& a, const packed_string& b) { return a + b.str(); }
  friend std::string operator+(const packed_string& a, const char* b) { return a.str() + b; }
  friend std::string operator+(const char* a, const packed_string& b) { return a + b.str(); }

 private:
  void assign(std::string_view text) {
    char* old = p_;
    p_ = nullptr;
    if (!text.empty()) {
      const auto n = static_cast<std::uint32_t>(text.size());
      p_ = new char[sizeof n + text.size() + 1];
      std::memcpy(p_, &n, sizeof n);
      std::memcpy(p_ + sizeof n, text.data(), text.size());
      p_[sizeof n + text.size()] = '\0';
    }
    delete[] old;  // after the copy: text may be this string's own
  }
  char* p_ = nullptr;
};

}  // namespace dupcache

template <>
struct std::hash<dupcache::packed_string> {
  std::size_t operator()(const dupcache::packed_string& v) const noexcept {
    return std::hash<std::string_view>{}(v.view());
  }
};

template <>
struct fmt::formatter<dupcache::packed_string> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const dupcache::packed_string& v, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(v.view(), ctx);
  }
};
