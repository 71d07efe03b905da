// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// A vector of fixed-size blocks that never move (issue 17).
//
// A std::vector grown by doubling holds up to twice the records it needs just past a power of
// two, and while it grows the old and the new array are both alive: at a million scanned files
// that was up to 144 B per file for 48 B records. This one allocates blocks of BlockSize
// records as they are needed: its slack is at most one block, it never copies a record to
// grow, and references to records stay valid while it grows. Only the records below size()
// are constructed (a default-made record may take a lock, as interned does), so the untouched
// part of the last block costs no resident memory either.
//
// It reads like a std::vector: [], size(), resize(), push_back(), front()/back() and random
// access iterators (std::sort, std::count_if, ranged for).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace dupcache {

template <typename T, std::size_t BlockSize = 4096>
class chunked_vector {
  static_assert(BlockSize > 0 && (BlockSize & (BlockSize - 1)) == 0, "BlockSize is a power of two");
  static constexpr std::size_t shift = std::countr_zero(BlockSize);
  static constexpr std::size_t mask = BlockSize - 1;

 public:
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using reference = T&;
  using const_reference = const T&;
  static constexpr std::size_t block_size = BlockSize;

  template <bool Const>
  class iter {
    using owner = std::conditional_t<Const, const chunked_vector, chunked_vector>;

   public:
    using iterator_category = std::random_access_iterator_tag;
    using iterator_concept = std::random_access_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<Const, const T*, T*>;
    using reference = std::conditional_t<Const, const T&, T&>;

    iter() = default;
    iter(owner* v, std::size_t i) : v_(v), i_(i) {}
    operator iter<true>() const
      requires(!Const)
    {
      return {v_, i_};
    }

    reference operator*() const { return (*v_)[i_]; }
    pointer operator->() const { return &(*v_)[i_]; }
    reference operator[](difference_type n) const { return (*v_)[i_ + n]; }
    iter& operator++() { ++i_; return *this; }
    iter operator++(int) { iter t = *this; ++i_; return t; }
    iter& operator--() { --i_; return *this; }
    iter operator--(int) { iter t = *this; --i_; return t; }
    iter& operator+=(difference_type n) { i_ += n; return *this; }
    iter& operator-=(difference_type n) { i_ -= n; return *this; }
    friend iter operator+(iter a, difference_type n) { return a += n; }
    friend iter operator+(difference_type n, iter a) { return a += n; }
    friend iter operator-(iter a, difference_type n) { return a -= n; }
    friend difference_type operator-(const iter& a, const iter& b) {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(const iter& a, const iter& b) { return a.i_ == b.i_; }
    friend auto operator<=>(const iter& a, const iter& b) { return a.i_ <=> b.i_; }

   private:
    friend class chunked_vector;
    owner* v_ = nullptr;
    std::size_t i_ = 0;
  };
  using iterator = iter<false>;
  using const_iterator = iter<true>;

  chunked_vector() = default;
  chunked_vector(std::size_t n, const T& value) { resize(n, value); }
  chunked_vector(const chunked_vector& o) {
    reserve(o.size_);
    for (const auto& x : o) push_back(x);
  }
  chunked_vector(chunked_vector&& o) noexcept
      : blocks_(std::move(o.blocks_)), size_(std::exchange(o.size_, 0)) {
    o.blocks_.clear();
  }
  chunked_vector& operator=(const chunked_vector& o) {
    if (this != &o) {
      chunked_vector t(o);
      swap(t);
    }
    return *this;
  }
  chunked_vector& operator=(chunked_vector&& o) noexcept {
    if (this != &o) {
      release();
      blocks_ = std::move(o.blocks_);
      o.blocks_.clear();
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~chunked_vector() { release(); }

  void swap(chunked_vector& o) noexcept {
    blocks_.swap(o.blocks_);
    std::swap(size_, o.size_);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Records the blocks allocated so far can hold.
  std::size_t capacity() const { return blocks_.size() * BlockSize; }

  T& operator[](std::size_t i) { return blocks_[i >> shift][i & mask]; }
  const T& operator[](std::size_t i) const { return blocks_[i >> shift][i & mask]; }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }

  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const { return end(); }

  // Allocates the blocks for n records (none is constructed).
  void reserve(std::size_t n) {
    const std::size_t want = (n + BlockSize - 1) >> shift;
    if (want > blocks_.size()) blocks_.reserve(want);
    while (blocks_.size() < want) add_block();
  }

  template <typename... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == capacity()) add_block();
    T* p = &blocks_[size_ >> shift][size_ & mask];
    std::construct_at(p, std::forward<Args>(args)...);
    ++size_;
    return *p;
  }
  void push_back(const T& v) { emplace_back(v); }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  void pop_back() {
    --size_;
    std::destroy_at(&(*this)[size_]);
  }

  void resize(std::size_t n) { resize_with(n, [](T* p) { std::construct_at(p); }); }
  void resize(std::size_t n, const T& value) {
    resize_with(n, [&value](T* p) { std::construct_at(p, value); });
  }
  void assign(std::size_t n, const T& value) {
    clear();
    resize(n, value);
  }
  // Destroys every record and frees every block.
  void clear() { release(); }

  friend bool operator==(const chunked_vector& a, const chunked_vector& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  struct block_free {
    void operator()(T* p) const { ::operator delete(p, std::align_val_t{alignof(T)}); }
  };
  using block = std::unique_ptr<T[], block_free>;

  void add_block() {
    blocks_.emplace_back(static_cast<T*>(::operator new(BlockSize * sizeof(T), std::align_val_t{alignof(T)})));
  }

  template <typename Make>
  void resize_with(std::size_t n, Make&& make) {
    while (size_ > n) pop_back();
    reserve(n);
    while (size_ < n) {
      make(&(*this)[size_]);
      ++size_;
    }
  }

  void release() {
    while (size_ > 0) pop_back();
    blocks_.clear();
    blocks_.shrink_to_fit();
  }

  std::vector<block> blocks_;
  std::size_t size_ = 0;
};

}  // namespace dupcache
