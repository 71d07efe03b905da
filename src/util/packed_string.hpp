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
//
// pooled() puts the block in a string_pool instead: packed end to end in large blocks, with no
// malloc header nor rounding per string, and no string pinning a page of a walker thread's
// arena between freed temporaries. A pooled string never frees its block; its copies are
// ordinary heap strings, and a move keeps the block, so a moved pooled string must not outlive
// its pool (the one-shot report keeps the pool beside the records: scan_result::paths).

#include <fmt/format.h>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dupcache {

// Room for packed_string::pooled() blocks: large blocks that never move, freed all at once
// with the pool. A copy of a pool is empty (the copies of pooled strings are heap strings).
class string_pool {
 public:
  static constexpr std::size_t block_bytes = 64 * 1024;
  string_pool() = default;
  string_pool(const string_pool&) {}
  string_pool& operator=(const string_pool&) { return *this; }  // keeps its own blocks: its strings live on
  // Moves take the blocks (the strings in them stay put) and leave the other pool empty. An
  // assigned pool's own blocks are freed: its strings must be gone by then.
  string_pool(string_pool&& o) noexcept
      : blocks_(std::move(o.blocks_)),
        cur_(std::exchange(o.cur_, nullptr)),
        left_(std::exchange(o.left_, 0)),
        used_(std::exchange(o.used_, 0)) {
    o.blocks_.clear();
  }
  string_pool& operator=(string_pool&& o) noexcept {
    if (this != &o) {
      blocks_ = std::move(o.blocks_);
      o.blocks_.clear();
      cur_ = std::exchange(o.cur_, nullptr);
      left_ = std::exchange(o.left_, 0);
      used_ = std::exchange(o.used_, 0);
    }
    return *this;
  }

  // n bytes at an even address (packed_string tags its pointer with the low bit; it reads its
  // length with memcpy, so no more alignment is needed).
  char* take(std::size_t n) {
    n += n & 1;
    if (n > block_bytes / 4) {  // a long one: a block of its own, the current one kept
      blocks_.push_back(std::make_unique_for_overwrite<char[]>(n));
      used_ += n;
      return blocks_.back().get();
    }
    if (n > left_) {
      blocks_.push_back(std::make_unique_for_overwrite<char[]>(block_bytes));
      cur_ = blocks_.back().get();
      left_ = block_bytes;
    }
    char* p = cur_;
    cur_ += n;
    left_ -= n;
    used_ += n;
    return p;
  }
  std::size_t blocks() const { return blocks_.size(); }
  std::size_t bytes_used() const { return used_; }

 private:
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* cur_ = nullptr;
  std::size_t left_ = 0;
  std::size_t used_ = 0;
};

class packed_string {
 public:
  packed_string() = default;
  packed_string(std::string_view text) { assign(text); }   // NOLINT: implicit, as a string is
  packed_string(const std::string& text) { assign(text); }  // NOLINT
  packed_string(const char* text) { assign(text); }         // NOLINT
  packed_string(const packed_string& o) { assign(o.view()); }
  packed_string(packed_string&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ~packed_string() { release(); }
  // text in `pool` (see above).
  static packed_string pooled(std::string_view text, string_pool& pool) {
    packed_string s;
    if (!text.empty()) {
      char* p = pool.take(sizeof(std::uint32_t) + text.size() + 1);
      fill(p, text);
      s.p_ = p + 1;  // the tag: pool places are even, heap blocks aligned
    }
    return s;
  }
  bool is_pooled() const { return (reinterpret_cast<std::uintptr_t>(p_) & 1) != 0; }

  packed_string& operator=(const packed_string& o) {
    if (this != &o) assign(o.view());
    return *this;
  }
  packed_string& operator=(packed_string&& o) noexcept {
    if (this != &o) {
      release();
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
    const char* b = block();
    std::uint32_t n = 0;
    std::memcpy(&n, b, sizeof n);
    return {b + sizeof n, n};
  }
  std::string str() const { return std::string(view()); }
  operator std::string_view() const { return view(); }  // NOLINT: reads as the text it is
  operator std::string() const { return str(); }        // NOLINT
  const char* c_str() const { return p_ == nullptr ? "" : block() + sizeof(std::uint32_t); }
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
  static void fill(char* p, std::string_view text) {
    const auto n = static_cast<std::uint32_t>(text.size());
    std::memcpy(p, &n, sizeof n);
    std::memcpy(p + sizeof n, text.data(), text.size());
    p[sizeof n + text.size()] = '\0';
  }
  void release() {
    if (!is_pooled()) delete[] p_;
  }
  void assign(std::string_view text) {
    char* old = p_;
    const bool old_pooled = is_pooled();
    p_ = nullptr;
    if (!text.empty()) {
      p_ = new char[sizeof(std::uint32_t) + text.size() + 1];
      fill(p_, text);
    }
    if (!old_pooled) delete[] old;  // after the copy: text may be this string's own
  }
  const char* block() const { return p_ - (reinterpret_cast<std::uintptr_t>(p_) & 1); }
  // The heap block, or the pool place + 1 (is_pooled()).
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
