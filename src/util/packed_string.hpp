// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// A string held behind one pointer: 8 bytes in place of a std::string's 32, for the path in
// every scanned file's record, which a scan of a million cached files keeps a million of (issue
// 17). On the heap it is one block of its own size (its length and its bytes). Empty holds no
// block.
//
// pooled() puts it in a string_pool instead, split at its last '/': the directory (up to and
// with that '/') once per directory, and per path only its leaf name and a pointer to the
// directory's block (paths are kept once per directory, not per file). So the text is not one
// run of bytes: it reads as its two pieces() (the first empty on the heap), and a std::string
// is made only where one is asked for (str(), append_to(), a conversion where a const
// std::string& is taken); comparisons, hashing and fmt read the pieces in place.
//
// A pooled string never frees its blocks; its copies are heap strings, and a move keeps the
// blocks, so a moved pooled string must not outlive its pool (the one-shot report keeps the pool
// beside the records: scan_result::paths). sharing() makes a copy that reads the pool's text
// in place, for whoever holds the pool's blocks alive (string_pool::keep_alive(): a live
// model's every sample, which would otherwise copy a million paths each interval).

#include <fmt/format.h>

#include <algorithm>
#include <array>
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
// It remembers the blocks of the last recent_dirs directories it was given: the walker threads
// each record one directory's files one after another, so a directory is found there and
// stored once (a directory met again after that is stored again: the text is the same).
class string_pool {
 public:
  static constexpr std::size_t block_bytes = 64 * 1024;
  string_pool() = default;
  string_pool(const string_pool&) {}
  string_pool& operator=(const string_pool&) { return *this; }  // keeps its own blocks: its strings live on
  // Moves take the blocks (the strings in them stay put) and leave the other pool empty. An
  // assigned pool's own blocks are freed: its strings must be gone by then.
  string_pool(string_pool&& o) noexcept
      : blocks_(std::exchange(o.blocks_, nullptr)),
        cur_(std::exchange(o.cur_, nullptr)),
        left_(std::exchange(o.left_, 0)),
        used_(std::exchange(o.used_, 0)),
        dirs_(std::exchange(o.dirs_, {})),
        next_dir_(std::exchange(o.next_dir_, 0)),
        dirs_stored_(std::exchange(o.dirs_stored_, 0)) {}
  string_pool& operator=(string_pool&& o) noexcept {
    if (this != &o) {
      blocks_ = std::exchange(o.blocks_, nullptr);
      cur_ = std::exchange(o.cur_, nullptr);
      left_ = std::exchange(o.left_, 0);
      used_ = std::exchange(o.used_, 0);
      dirs_ = std::exchange(o.dirs_, {});
      next_dir_ = std::exchange(o.next_dir_, 0);
      dirs_stored_ = std::exchange(o.dirs_stored_, 0);
    }
    return *this;
  }

  // n bytes at an even address (packed_string tags its pointer with the low bit; it reads its
  // length with memcpy, so no more alignment is needed).
  char* take(std::size_t n) {
    n += n & 1;
    if (n > block_bytes / 4) {  // a long one: a block of its own, the current one kept
      used_ += n;
      return add_block(n);
    }
    if (n > left_) {
      cur_ = add_block(block_bytes);
      left_ = block_bytes;
    }
    char* p = cur_;
    cur_ += n;
    left_ -= n;
    used_ += n;
    return p;
  }
  // The block of directory text `dir` (its u32 length and its bytes): a recent one with that
  // text, or a new one.
  const char* dir_block(std::string_view dir) {
    for (const char* d : dirs_) {
      if (d == nullptr) break;
      std::uint32_t n = 0;
      std::memcpy(&n, d, sizeof n);
      if (n == dir.size() && std::memcmp(d + sizeof n, dir.data(), n) == 0) return d;
    }
    char* d = take(sizeof(std::uint32_t) + dir.size());
    const auto n = static_cast<std::uint32_t>(dir.size());
    std::memcpy(d, &n, sizeof n);
    std::memcpy(d + sizeof n, dir.data(), dir.size());
    dirs_[next_dir_] = d;
    next_dir_ = (next_dir_ + 1) % recent_dirs;
    ++dirs_stored_;
    return d;
  }
  std::size_t blocks() const { return blocks_ ? blocks_->size() : 0; }
  // Holds the blocks (the ones taken so far and every one taken later) alive after the pool is
  // gone: for the sharing() copies of its strings. Blocks are never written again once their
  // strings are made, so readers of those copies need nothing else from the pool.
  std::shared_ptr<const void> keep_alive() const { return blocks_; }
  std::size_t bytes_used() const { return used_; }
  std::size_t dirs_stored() const { return dirs_stored_; }

  static constexpr std::size_t recent_dirs = 16;

 private:
  using block_list = std::vector<std::unique_ptr<char[]>>;
  char* add_block(std::size_t n) {
    if (!blocks_) blocks_ = std::make_shared<block_list>();
    blocks_->push_back(std::make_unique_for_overwrite<char[]>(n));
    return blocks_->back().get();
  }

  std::shared_ptr<block_list> blocks_;  // shared with keep_alive()
  char* cur_ = nullptr;
  std::size_t left_ = 0;
  std::size_t used_ = 0;
  std::array<const char*, recent_dirs> dirs_{};
  std::size_t next_dir_ = 0;
  std::size_t dirs_stored_ = 0;
};

class packed_string {
 public:
  packed_string() = default;
  packed_string(std::string_view text) { assign(text); }   // NOLINT: implicit, as a string is
  packed_string(const std::string& text) { assign(text); }  // NOLINT
  packed_string(const char* text) { assign(text); }         // NOLINT
  packed_string(const packed_string& o) { copy_from(o); }
  packed_string(packed_string&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ~packed_string() { release(); }

  // The longest leaf name a pooled string holds (its length is one byte; a name in a directory
  // is at most NAME_MAX = 255 bytes). A longer one, or text with no '/', is a heap string.
  static constexpr std::size_t max_leaf = 255;
  // text in `pool`, split at its last '/' (see above): the pool's block for the directory,
  // then a leaf block of the directory block's address, the leaf's length (one byte) and its
  // bytes, rounded up to an even size.
  static packed_string pooled(std::string_view text, string_pool& pool) {
    const std::size_t slash = text.rfind('/');
    if (slash == std::string_view::npos || text.size() - slash - 1 > max_leaf) return packed_string(text);
    const std::string_view leaf = text.substr(slash + 1);
    const char* dir = pool.dir_block(text.substr(0, slash + 1));
    char* p = pool.take(sizeof dir + 1 + leaf.size());
    std::memcpy(p, &dir, sizeof dir);
    p[sizeof dir] = static_cast<char>(static_cast<unsigned char>(leaf.size()));
    std::memcpy(p + sizeof dir + 1, leaf.data(), leaf.size());
    packed_string s;
    s.p_ = p + 1;  // the tag: pool places are even, heap blocks aligned
    return s;
  }
  bool is_pooled() const { return (reinterpret_cast<std::uintptr_t>(p_) & 1) != 0; }
  // A copy of o that reads a pooled o's text where it is, in its pool's blocks: the caller
  // keeps them alive (string_pool::keep_alive()) as long as the copy. Any other o is copied.
  static packed_string sharing(const packed_string& o) {
    if (!o.is_pooled()) return o;
    packed_string s;
    s.p_ = o.p_;
    return s;
  }

  packed_string& operator=(const packed_string& o) {
    if (this != &o) copy_from(o);
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

  // The text as two pieces, one after the other: a pooled string's directory and leaf; a heap
  // string's first piece is empty.
  std::pair<std::string_view, std::string_view> pieces() const {
    if (p_ == nullptr) return {};
    if (!is_pooled()) return {{}, run(p_)};
    const char* leaf = p_ - 1;
    const char* dir = nullptr;
    std::memcpy(&dir, leaf, sizeof dir);
    const auto n = static_cast<unsigned char>(leaf[sizeof dir]);
    return {run(dir), {leaf + sizeof dir + 1, n}};
  }
  std::string str() const {
    std::string s;
    append_to(s);
    return s;
  }
  void append_to(std::string& out) const {
    const auto [head, tail] = pieces();
    out.reserve(out.size() + head.size() + tail.size());
    out.append(head);
    out.append(tail);
  }
  operator std::string() const { return str(); }  // NOLINT: reads as the text it is
  bool empty() const { return p_ == nullptr; }
  std::size_t size() const {
    const auto [head, tail] = pieces();
    return head.size() + tail.size();
  }

  // Bytewise, as the whole text compares (a std::string of it would compare the same).
  friend std::strong_ordering compare_text(const packed_string& a, std::string_view b0, std::string_view b1) {
    const auto [a0, a1] = a.pieces();
    return compare_runs(a0, a1, b0, b1);
  }
  friend bool operator==(const packed_string& a, const packed_string& b) {
    const auto [b0, b1] = b.pieces();
    return a.size() == b0.size() + b1.size() && compare_text(a, b0, b1) == 0;
  }
  friend bool operator==(const packed_string& a, std::string_view b) {
    return a.size() == b.size() && compare_text(a, {}, b) == 0;
  }
  friend bool operator==(const packed_string& a, const std::string& b) { return a == std::string_view(b); }
  friend bool operator==(const packed_string& a, const char* b) { return a == std::string_view(b); }
  friend std::strong_ordering operator<=>(const packed_string& a, const packed_string& b) {
    const auto [b0, b1] = b.pieces();
    return compare_text(a, b0, b1);
  }
  friend std::strong_ordering operator<=>(const packed_string& a, std::string_view b) { return compare_text(a, {}, b); }
  friend std::strong_ordering operator<=>(const packed_string& a, const std::string& b) {
    return compare_text(a, {}, b);
  }
  friend std::string operator+(const packed_string& a, std::string_view b) { return a.str() + std::string(b); }
  friend std::string operator+(std::string_view a, const packed_string& b) { return std::string(a) + b.str(); }
  friend std::string operator+(const packed_string& a, const std::string& b) { return a.str() + b; }
  friend std::string operator+(const std::string& a, const packed_string& b) { return a + b.str(); }
  friend std::string operator+(const packed_string& a, const char* b) { return a.str() + b; }
  friend std::string operator+(const char* a, const packed_string& b) { return a + b.str(); }

 private:
  // a0 + a1 against b0 + b1, bytewise (unsigned, as std::string compares).
  static std::strong_ordering compare_runs(std::string_view a0, std::string_view a1, std::string_view b0,
                                           std::string_view b1) {
    // Two paths of one directory (the pool keeps a directory once): only the leaves differ.
    if (a0.data() == b0.data() && a0.size() == b0.size()) {
      a0 = std::exchange(a1, {});
      b0 = std::exchange(b1, {});
    }
    while (true) {
      if (a0.empty() && !a1.empty()) a0 = std::exchange(a1, {});
      if (b0.empty() && !b1.empty()) b0 = std::exchange(b1, {});
      if (a0.empty() || b0.empty()) return !a0.empty() <=> !b0.empty();
      const std::size_t n = std::min(a0.size(), b0.size());
      if (const int c = std::memcmp(a0.data(), b0.data(), n); c != 0) return c <=> 0;
      a0.remove_prefix(n);
      b0.remove_prefix(n);
    }
  }
  // A block of a u32 length and that many bytes.
  static std::string_view run(const char* b) {
    std::uint32_t n = 0;
    std::memcpy(&n, b, sizeof n);
    return {b + sizeof n, n};
  }
  void release() {
    if (!is_pooled()) delete[] p_;
  }
  void copy_from(const packed_string& o) {
    const auto [head, tail] = o.pieces();
    set(head, tail);
  }
  void assign(std::string_view text) { set({}, text); }
  // A heap block of head + tail (either may be this string's own text).
  void set(std::string_view head, std::string_view tail) {
    char* old = p_;
    const bool old_pooled = is_pooled();
    p_ = nullptr;
    if (const std::size_t size = head.size() + tail.size(); size != 0) {
      p_ = new char[sizeof(std::uint32_t) + size];
      const auto n = static_cast<std::uint32_t>(size);
      std::memcpy(p_, &n, sizeof n);
      // An empty piece may have no data at all (nullptr): memcpy must not be given it.
      if (!head.empty()) std::memcpy(p_ + sizeof n, head.data(), head.size());
      if (!tail.empty()) std::memcpy(p_ + sizeof n + head.size(), tail.data(), tail.size());
    }
    if (!old_pooled) delete[] old;  // after the copy: the text may be this string's own
  }
  // The heap block, or the pool's leaf block + 1 (is_pooled()).
  char* p_ = nullptr;
};

}  // namespace dupcache

template <>
struct std::hash<dupcache::packed_string> {
  std::size_t operator()(const dupcache::packed_string& v) const noexcept {
    // The text's hash (as std::hash<std::string_view> of it), read piece by piece when pooled.
    const auto [head, tail] = v.pieces();
    if (head.empty()) return std::hash<std::string_view>{}(tail);
    return std::hash<std::string>{}(v.str());
  }
};

template <>
struct fmt::formatter<dupcache::packed_string> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const dupcache::packed_string& v, Ctx& ctx) const {
    const auto [head, tail] = v.pieces();
    if (head.empty()) return fmt::formatter<std::string_view>::format(tail, ctx);
    return fmt::formatter<std::string_view>::format(std::string_view(v.str()), ctx);  // width and fill apply to the whole
  }
};
