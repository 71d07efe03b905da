// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The physical-block index: which cached copies (inodes) hold each physical page.
//
// It knows nothing of where its feeds come from (the scanner or the live tracer): feeds name a
// copy and a physical range that copy has cached, clean, and the index keeps, per physical
// domain, a map of disjoint segments, each with the exact set of copies caching all of it.
// Segments are extents, never pages, so memory follows the number of distinct extents cached.

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/chunked_vector.hpp"
#include "util/interned.hpp"

namespace dupcache {

using copy_id = std::uint32_t;
using domain_id = std::uint32_t;

// A cached copy is an inode: (filesystem, subvolume, inode number). Never a path: hardlinks and
// bind mounts reach one inode and one page cache.
struct copy_key {
  interned fs;               // filesystem identity (UUID/fsid), never st_dev
  std::uint64_t subvol = 0;  // btrfs subvolume root id; 0 elsewhere
  std::uint64_t ino = 0;
  auto operator<=>(const copy_key&) const = default;
  bool operator==(const copy_key&) const = default;
};

struct copy_key_hash {
  std::size_t operator()(const copy_key& k) const noexcept;
};

// A group: the physical bytes cached by exactly this set of copies (k >= 2).
struct copy_group {
  std::vector<copy_id> copies;  // sorted by copy_key
  std::uint64_t bytes = 0;      // physical bytes cached by every one of the copies
  std::uint64_t wasted_bytes() const { return bytes * (copies.size() - 1); }
};

struct copy_share {
  std::uint64_t shared_bytes = 0;  // cached bytes whose physical pages another copy caches too
  std::uint64_t wasted_bytes = 0;  // this copy's part of the waste (see split_waste)
};

class block_index {
 public:
  explicit block_index(std::uint64_t page_size) : page_size_(page_size) {}

  std::uint64_t page_size() const { return page_size_; }

  copy_id intern_copy(const copy_key& key);
  const copy_key& key_of(copy_id id) const { return copies_[id]; }
  std::size_t copy_count() const { return copies_.size(); }
  // Every copy's key, by id, taken from an index that is done with (the report's model keeps
  // them without a copy); the index is left empty.
  chunked_vector<copy_key> take_keys() &&;
  std::optional<copy_id> find_copy(const copy_key& key) const;

  // A physical namespace in which equal addresses mean the same bytes on disk: a filesystem's
  // data device, an XFS realtime device, one btrfs compressed extent, ...
  domain_id intern_domain(const std::string& name);
  const std::string& domain_name(domain_id id) const { return domain_names_[id]; }

  // Record that `copy` has [phys, phys + len) cached. Adding a range the copy already holds is a
  // no-op, so a file that maps one extent twice counts once. Ranges must be page aligned.
  void add(copy_id copy, domain_id domain, std::uint64_t phys, std::uint64_t len);
  // Forget that `copy` caches [phys, phys + len) (pages evicted or the mapping changed).
  void remove(copy_id copy, domain_id domain, std::uint64_t phys, std::uint64_t len);

  // Exact totals, maintained on every change.
  std::uint64_t indexed_bytes() const { return indexed_bytes_; }  // Σ over copies of their bytes
  std::uint64_t unique_bytes() const { return unique_bytes_; }    // distinct physical bytes
  std::uint64_t wasted_bytes() const { return indexed_bytes_ - unique_bytes_; }
  std::size_t segment_count() const;
  std::size_t memory_bytes() const;  // estimate of heap use, for the benchmarks

  // Bytes of `domain`'s [phys, phys+len) that are cached by at least `min_copies` copies.
  std::uint64_t covered_bytes(domain_id domain, std::uint64_t phys, std::uint64_t len,
                              std::size_t min_copies = 1) const;

  // Bytes of `domain`'s [phys, phys+len) that a copy other than `self` caches.
  std::uint64_t covered_by_others(domain_id domain, std::uint64_t phys, std::uint64_t len, copy_id self) const;

  // Every physical range cached by at least two copies, in address order per domain:
  // fn(domain, start, end, copies), copies sorted by id.
  template <typename Fn>
  void for_each_shared(Fn&& fn) const {
    for (domain_id d = 0; d < domains_.size(); ++d) {
      for (const auto& [start, seg] : domains_[d]) {
        if (seg.copies.size() >= 2) fn(d, start, seg.end, seg.copies);
      }
    }
  }
  // The id of a domain already interned.
  std::optional<domain_id> find_domain(const std::string& name) const;

  // All groups with at least two copies, largest waste first.
  std::vector<copy_group> groups() const;

  // Per copy: shared bytes and its part of the waste. The waste of a group of k copies holding
  // P pages is (k-1)·P pages, split evenly: each copy pays floor((k-1)·P/k) pages and the
  // remaining pages go one each to the first copies in copy_key order, so the parts add up to
  // the total exactly and do not depend on scan order.
  std::unordered_map<copy_id, copy_share> split_waste() const;
  // The same split of `groups` (what groups() returned), as a vector sorted by copy id with
  // each copy once: what the report's model keeps (issue 17). Sized exactly, with no hash map
  // and no second groups() alive beside the caller's.
  static std::vector<std::pair<copy_id, copy_share>> split_waste_by_id(const std::vector<copy_group>& groups,
                                                                       std::uint64_t page_size);

 private:
  struct segment {
    std::uint64_t end = 0;
    std::vector<copy_id> copies;  // sorted by id
  };
  using segment_map = std::map<std::uint64_t, segment>;  // start -> segment, disjoint

  segment_map::iterator split_at(segment_map& m, std::uint64_t at);
  // Bytes of [phys, phys+len) in segments whose copy set satisfies pred.
  template <typename Pred>
  std::uint64_t covered_if(domain_id domain, std::uint64_t phys, std::uint64_t len, Pred&& pred) const;
  template <typename Fn>
  void update_range(domain_id domain, std::uint64_t phys, std::uint64_t len, bool create_gaps,
                    Fn&& change);

  // The slot of copy_slots_ where `key` is, or the empty slot where it would go.
  std::size_t copy_slot(const copy_key& key) const;

  std::uint64_t page_size_;
  chunked_vector<copy_key> copies_;  // fixed blocks: no doubling slack, no copy to grow
  // copy_key -> copy_id: an open-addressed table of ids into copies_ (linear probing, a power
  // of two in size, at most half full). A node-based map cost about 64 bytes per copy, as much
  // as the rest of a scanned file's record; this costs 8 to 16 (issue 17: a million cached
  // files in 128 MiB).
  static constexpr copy_id no_copy = ~copy_id{0};
  std::vector<copy_id> copy_slots_;
  std::vector<std::string> domain_names_;
  std::unordered_map<std::string, domain_id> domain_ids_;
  std::vector<segment_map> domains_;
  std::uint64_t indexed_bytes_ = 0;
  std::uint64_t unique_bytes_ = 0;
};

}  // namespace dupcache
